"""One dattri attribution run for `cargo xtask compare-dattri`.

Usage:
    run_dattri.py probe                 print versions as JSON and exit
    run_dattri.py run SPEC.json         run one (model, method, setting) and write
                                        the score matrix (.npy) and a meta JSON

SPEC (written by xtask/src/compare_dattri.rs) names the exported data
(x_train.npy, y_train.npy, x_test.npy, y_test.npy: the same first 5000 / 500
MNIST points wellspring uses), the exported weights (model.safetensors,
PyTorch layout: `body.{i}.weight|bias`, `head.weight|bias`), the method, its
matched hyper-parameters and the loader batch sizes.

Scores are written as an `n_train x n_test` float32 matrix with wellspring's
sign (positive = the training point helps the test point). dattri's
attributors already return `n_train x n_test` with that sign for every method
used here (IF: g_train^T (H + lambda I)^-1 g_test; Grad-Dot/Cos: g_train . g_test;
TRAK: phi_test K phi_train^T Q, margin gradients); the shape is checked and a
transposed result is turned around.

Timing: wall time of building the attributor, `cache` and `attribute` for the
full matrix (data and weights are loaded before the clock starts). The run is
inside `torch.no_grad()` (dattri's torch.func transforms do not need the
outer autograd graph, and with it LiSSA keeps every step's graph alive),
except EK-FAC, which calls `backward()` itself. EK-FAC's eigendecompositions
are taken in float64 (`eigh_f64`, default on): in float32 torch's `eigh`
fails to converge on the input covariance of MNIST, whose constant-zero
pixels give many repeated zero eigenvalues. Memory:
VmHWM after resetting it with /proc/self/clear_refs just before the clock
starts (like wellspring's lds-mnist), the RSS at that point, and ru_maxrss of
the whole process (Python + torch import included).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time


def _status_kib(field: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def versions() -> dict:
    import platform
    from importlib import metadata

    import numpy
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "dattri": metadata.version("dattri"),
        "numpy": numpy.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def load_safetensors(path: str) -> dict:
    """Reads a safetensors file with numpy only (no extra dependency)."""
    import numpy as np
    import torch

    dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        start, end = info["data_offsets"]
        arr = np.frombuffer(data[start:end], dtype=dtypes[info["dtype"]])
        out[key] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out


def build_model(spec: dict):
    """`body` (Linear-ReLU-Dropout per hidden width) + `head`, as wellspring's
    ModelConfig::LogReg / Mlp, so the exported keys load unchanged."""
    from torch import nn

    d_in, hidden, n_out = spec["d_in"], spec["hidden"], spec["n_out"]
    layers = []
    width = d_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if spec.get("dropout", 0.0) > 0.0:
            layers.append(nn.Dropout(spec["dropout"]))
        width = h

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(*layers)
            self.head = nn.Linear(width, n_out)

        def forward(self, x):
            return self.head(self.body(x))

    return Net()


def _eigh_f64_patch() -> None:
    """dattri's EK-FAC eigendecomposition in float64, cast back to float32."""
    import torch

    from dattri.func import fisher

    def estimate_eigenvector(covariances):
        out = {}
        for name, (cov_a, cov_s) in covariances.items():
            q_a = torch.linalg.eigh(cov_a.double(), UPLO="U")[1].to(cov_a.dtype)
            q_s = torch.linalg.eigh(cov_s.double(), UPLO="U")[1].to(cov_s.dtype)
            out[name] = (q_a, q_s)
        return out

    fisher.estimate_eigenvector = estimate_eigenvector


def run(spec: dict) -> dict:
    import contextlib

    import torch

    method = spec["method"]
    if method == "ekfac" and spec["params"].get("eigh_f64", True):
        _eigh_f64_patch()
    no_grad = spec.get("no_grad", True) and method != "ekfac"
    with torch.no_grad() if no_grad else contextlib.nullcontext():
        meta = _run(spec)
    meta["no_grad"] = no_grad
    return meta


def _run(spec: dict) -> dict:
    import numpy as np
    import torch
    from torch import nn
    from torch.nn import functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from dattri.task import AttributionTask

    torch.set_num_threads(int(spec["threads"]))
    torch.manual_seed(int(spec.get("seed", 0)))
    d = spec["data_dir"]
    x_train = torch.from_numpy(np.load(os.path.join(d, "x_train.npy")))
    y_train = torch.from_numpy(np.load(os.path.join(d, "y_train.npy")))
    x_test = torch.from_numpy(np.load(os.path.join(d, "x_test.npy")))
    y_test = torch.from_numpy(np.load(os.path.join(d, "y_test.npy")))
    model = build_model(spec["model"])
    state = load_safetensors(os.path.join(d, "model.safetensors"))
    model.load_state_dict(state)
    model.eval()

    def loss_fn(params, data):
        # mean cross-entropy of a batch; dattri's per-example gradients call it
        # on a batch of one, its Hessian products on the full batch
        x, y = data
        if x.dim() == 1:
            x, y = x.unsqueeze(0), y.unsqueeze(0)
        yhat = torch.func.functional_call(model, params, x)
        return F.cross_entropy(yhat, y.long())

    def margin_fn(params, data):
        # TRAK's output: log p_y - log(1 - p_y), written as z_y - logsumexp(z_{-y})
        x, y = data
        x, y = x.unsqueeze(0), y.unsqueeze(0)
        z = torch.func.functional_call(model, params, x)[0]
        # vmap-safe: no indexing by the (batched) label value
        is_y = torch.arange(z.shape[0], device=z.device) == y[0].long()
        zy = torch.where(is_y, z, torch.zeros_like(z)).sum()
        others = torch.where(is_y, torch.full_like(z, -torch.inf), z)
        return zy - torch.logsumexp(others, dim=0)

    def correct_prob_fn(params, data):
        x, y = data
        x, y = x.unsqueeze(0), y.unsqueeze(0)
        z = torch.func.functional_call(model, params, x)
        return torch.exp(-F.cross_entropy(z, y.long()))

    method, p = spec["method"], spec["params"]
    bt, bs = int(spec["train_batch"]), int(spec["test_batch"])
    train_ds = TensorDataset(x_train, y_train)
    test_ds = TensorDataset(x_test, y_test)
    full_loader = DataLoader(train_ds, batch_size=len(train_ds), shuffle=False)
    train_loader = DataLoader(train_ds, batch_size=bt, shuffle=False)
    test_loader = DataLoader(test_ds, batch_size=bs, shuffle=False)
    checkpoint = {k: v.clone() for k, v in model.state_dict().items()}

    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        pass
    start_rss = _status_kib("VmRSS:")
    clock = time.perf_counter()
    if method in ("grad-dot", "grad-cos", "trak"):
        proj = {
            "proj_dim": int(p.get("proj_dim", 512)),
            "proj_type": p.get("proj_type", "identity"),
            "proj_seed": int(p.get("proj_seed", 0)),
            "proj_max_batch_size": 32,
            "device": "cpu",
        }
        if method == "trak":
            from dattri.algorithm.trak import TRAKAttributor

            task = AttributionTask(loss_func=margin_fn, model=model, checkpoints=checkpoint)
            attributor = TRAKAttributor(
                task=task,
                correct_probability_func=correct_prob_fn,
                projector_kwargs=proj,
                device="cpu",
                regularization=float(p.get("regularization", 0.0)),
            )
            attributor.cache(train_loader)
            scores = attributor.attribute(test_loader)
        else:
            from dattri.algorithm.tracin import TracInAttributor

            task = AttributionTask(loss_func=loss_fn, model=model, checkpoints=checkpoint)
            attributor = TracInAttributor(
                task=task,
                weight_list=torch.ones(1),
                normalized_grad=method == "grad-cos",
                projector_kwargs=proj,
                device="cpu",
            )
            scores = attributor.attribute(train_loader, test_loader)
    else:
        from dattri.algorithm import influence_function as inf

        task = AttributionTask(loss_func=loss_fn, model=model, checkpoints=checkpoint)
        reg = float(p.get("regularization", 0.0))
        if method == "if-explicit":
            attributor = inf.IFAttributorExplicit(task=task, regularization=reg)
        elif method == "if-cg":
            attributor = inf.IFAttributorCG(
                task=task,
                max_iter=int(p["max_iter"]),
                regularization=reg,
                mode=p.get("mode", "rev-rev"),
            )
        elif method == "if-lissa":
            attributor = inf.IFAttributorLiSSA(
                task=task,
                batch_size=int(p["batch_size"]),
                num_repeat=int(p["num_repeat"]),
                recursion_depth=int(p["recursion_depth"]),
                damping=float(p["damping"]),
                scaling=float(p["scaling"]),
                mode=p.get("mode", "rev-rev"),
            )
        elif method == "if-arnoldi":
            attributor = inf.IFAttributorArnoldi(
                task=task,
                proj_dim=int(p["proj_dim"]),
                max_iter=int(p["max_iter"]),
                regularization=reg,
                seed=int(p.get("seed", 0)),
            )
        elif method == "datainf":
            attributor = inf.IFAttributorDataInf(task=task, regularization=reg)
        elif method == "ekfac":
            attributor = inf.IFAttributorEKFAC(task=task, damping=reg)
        else:
            raise SystemExit(f"run_dattri.py: unknown method {method!r}")
        attributor.cache(full_loader)
        scores = attributor.attribute(train_loader, test_loader)
    scores = scores.detach().to(torch.float32).cpu().numpy()
    seconds = time.perf_counter() - clock
    peak = _status_kib("VmHWM:")
    n_train, n_test = len(train_ds), len(test_ds)
    transposed = False
    if scores.shape == (n_test, n_train) and n_test != n_train:
        scores, transposed = scores.T, True
    if scores.shape != (n_train, n_test):
        raise SystemExit(f"run_dattri.py: {method} returned shape {scores.shape}")
    np.save(spec["out_scores"], np.ascontiguousarray(scores, dtype=np.float32))
    import resource

    return {
        "method": method,
        "seconds": seconds,
        "peak_rss_mib": None if peak is None else peak / 1024.0,
        "start_rss_mib": None if start_rss is None else start_rss / 1024.0,
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "transposed": transposed,
        "non_finite": int((~np.isfinite(scores)).sum()),
        "versions": versions(),
    }


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "probe":
        print(json.dumps(versions()))
        return
    if len(sys.argv) != 3 or sys.argv[1] != "run":
        raise SystemExit(__doc__)
    with open(sys.argv[2], encoding="utf-8") as f:
        spec = json.load(f)
    meta = run(spec)
    with open(spec["out_meta"], "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
