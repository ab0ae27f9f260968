"""Textbook EK-FAC of the exported logistic regression, against both libraries.

Usage (after `cargo xtask compare-dattri`, which leaves the exports and both
score matrices in its work directory):

    target/dattri-venv/bin/python xtask/dattri/check_ekfac.py target/compare-dattri/full/lr

EK-FAC (George et al. 2018) of a linear layer with input a = [x; 1] and
output gradient d = p - onehot(y) (dataset labels, the empirical Fisher as
dattri uses it): A = E[a a^T] = Q_A diag Q_A^T, S = E[d d^T] = Q_S diag Q_S^T,
rotated gradients R_i = Q_S^T (d_i a_i^T) Q_A, corrected eigenvalues
L = mean_i R_i^2, score(i, j) = sum R_i * R_j / (L + lambda). Computed here in
float64. The same formula with the rotation Q_S (d a^T) Q_A^T (eigenvectors
used as rows, as dattri 0.3's `_update_lambda` and `transform_test_rep` do)
is printed too. Prints the mean per-test Pearson correlation of each with
wellspring's (`ekfac-identity-ws.npy`) and dattri's (`ekfac-exact-dattri.npy`)
scores.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from run_dattri import load_safetensors  # noqa: E402

DAMPING = 0.01


def main() -> None:
    d = sys.argv[1]
    st = load_safetensors(os.path.join(d, "model.safetensors"))
    w = st["head.weight"].double().numpy()
    b = st["head.bias"].double().numpy()

    def parts(name: str):
        x = np.load(os.path.join(d, f"x_{name}.npy")).astype(np.float64)
        y = np.load(os.path.join(d, f"y_{name}.npy"))
        z = x @ w.T + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[np.arange(len(y)), y] -= 1.0
        return np.hstack([x, np.ones((len(x), 1))]), p

    a, dl = parts("train")
    at, dlt = parts("test")
    _, qa = np.linalg.eigh(a.T @ a / len(a))
    _, qs = np.linalg.eigh(dl.T @ dl / len(a))

    def scores(rot):
        r = np.stack([rot(np.outer(di, ai)).ravel() for di, ai in zip(dl, a)])
        rt = np.stack([rot(np.outer(di, ai)).ravel() for di, ai in zip(dlt, at)])
        lam = (r**2).mean(0)
        return r @ (rt / (lam + DAMPING)).T

    textbook = scores(lambda g: qs.T @ g @ qa)
    rows = scores(lambda g: qs @ g @ qa.T)

    def pc(u, v):
        return np.mean([np.corrcoef(u[:, j], v[:, j])[0, 1] for j in range(u.shape[1])])

    ws = np.load(os.path.join(d, "ekfac-identity-ws.npy"))
    da = np.load(os.path.join(d, "ekfac-exact-dattri.npy"))
    print(f"textbook EK-FAC vs wellspring: {pc(textbook, ws):.4f}")
    print(f"textbook EK-FAC vs dattri:     {pc(textbook, da):.4f}")
    print(f"rows-rotation   vs dattri:     {pc(rows, da):.4f}")
    print(f"rows-rotation   vs wellspring: {pc(rows, ws):.4f}")


if __name__ == "__main__":
    main()
