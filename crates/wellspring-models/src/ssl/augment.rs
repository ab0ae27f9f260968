//! Seeded image augmentations on host buffers for contrastive learning
//! (SimCLR, Chen et al. 2020, §3 and appendix A: random resized crop, flips,
//! colour distortion, blur; here adapted to small grey or colour images).
//!
//! One call draws one view: a random affine map (resized crop of area
//! `crop_scale` and aspect `aspect`, rotation up to `max_rotation_deg`,
//! translation up to `max_translate` of the side) sampled bilinearly with
//! clamp-to-edge, an optional horizontal flip, a brightness/contrast jitter,
//! Gaussian noise and random erasing. Flips default to off: digits must not
//! be mirrored. Every draw comes from the caller's `ChaCha8Rng`.

use rand::RngExt;
use serde::{Deserialize, Serialize};
use wellspring_core::ChaCha8Rng;

use crate::error::{ModelError, Result};

/// Image geometry `channels × height × width` (row-major, channel-first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    /// Channels (1 for MNIST / Optdigits, 3 for CIFAR).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl ImageShape {
    /// Values per image.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// True for a zero-sized image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads a dataset's example shape: `[c, h, w]`, `[h, w]` (one channel),
    /// or a flat `[d]` that is a square grey image (`d = s²`, e.g. 784, 64)
    /// or a square colour image (`d = 3 s²`, e.g. 3072).
    pub fn from_example_shape(shape: &[usize]) -> Result<Self> {
        let square = |d: usize| {
            let s = (d as f64).sqrt().round() as usize;
            (s > 0 && s * s == d).then_some(s)
        };
        let img = match shape {
            [c, h, w] => Some((*c, *h, *w)),
            [h, w] => Some((1, *h, *w)),
            [d] => square(*d).map(|s| (1, s, s)).or_else(|| {
                (d % 3 == 0)
                    .then(|| square(d / 3))
                    .flatten()
                    .map(|s| (3, s, s))
            }),
            _ => None,
        };
        match img {
            Some((channels, height, width)) if channels * height * width > 0 => Ok(Self {
                channels,
                height,
                width,
            }),
            _ => Err(ModelError::config(
                "image shape",
                format!("{shape:?}"),
                "expected [c, h, w], [h, w], or a flat square image [s²] / [3·s²]",
            )),
        }
    }
}

/// Checked augmentation settings (defaults suit 28×28 / 8×8 digits).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AugmentParams {
    crop_scale: (f32, f32),
    aspect: (f32, f32),
    max_rotation_deg: f32,
    max_translate: f32,
    flip: bool,
    jitter: f32,
    noise_std: f32,
    erase_prob: f32,
    erase_area: (f32, f32),
}

impl Default for AugmentParams {
    /// Crop area 0.6–1, aspect 3/4–4/3, rotation ±15°, translation ±10 %,
    /// no flips, brightness/contrast jitter 0.3, noise σ 0.1 and erasing
    /// (probability 0.3, 2–15 % of the area) — σ and the brightness shift in
    /// units of the data's standard deviation.
    fn default() -> Self {
        Self {
            crop_scale: (0.6, 1.0),
            aspect: (0.75, 4.0 / 3.0),
            max_rotation_deg: 15.0,
            max_translate: 0.1,
            flip: false,
            jitter: 0.3,
            noise_std: 0.1,
            erase_prob: 0.3,
            erase_area: (0.02, 0.15),
        }
    }
}

impl AugmentParams {
    /// The defaults (for digits).
    pub fn new() -> Self {
        Self::default()
    }

    /// Settings for natural colour images (CIFAR): horizontal flips on,
    /// crops down to 0.3 of the area, rotation ±5°.
    pub fn natural_images() -> Self {
        Self {
            crop_scale: (0.3, 1.0),
            max_rotation_deg: 5.0,
            flip: true,
            jitter: 0.4,
            ..Self::default()
        }
    }

    /// Area fraction range of the resized crop, `0 < lo ≤ hi ≤ 1`.
    pub fn crop_scale(mut self, lo: f32, hi: f32) -> Self {
        self.crop_scale = (lo, hi);
        self
    }

    /// Aspect-ratio range of the crop, `0 < lo ≤ hi`.
    pub fn aspect(mut self, lo: f32, hi: f32) -> Self {
        self.aspect = (lo, hi);
        self
    }

    /// Maximum rotation in degrees (≥ 0).
    pub fn max_rotation_deg(mut self, deg: f32) -> Self {
        self.max_rotation_deg = deg;
        self
    }

    /// Maximum translation as a fraction of the side (≥ 0).
    pub fn max_translate(mut self, f: f32) -> Self {
        self.max_translate = f;
        self
    }

    /// Random horizontal flips (off for digits and text-like images).
    pub fn flip(mut self, on: bool) -> Self {
        self.flip = on;
        self
    }

    /// Brightness/contrast jitter strength in `[0, 1)`: contrast factor in
    /// `1 ± jitter`, shift in `± jitter · std`.
    pub fn jitter(mut self, j: f32) -> Self {
        self.jitter = j;
        self
    }

    /// Gaussian noise σ in units of the data's standard deviation (≥ 0).
    pub fn noise_std(mut self, s: f32) -> Self {
        self.noise_std = s;
        self
    }

    /// Random erasing: probability in `[0, 1]` and area fraction range.
    pub fn erase(mut self, prob: f32, lo: f32, hi: f32) -> Self {
        self.erase_prob = prob;
        self.erase_area = (lo, hi);
        self
    }

    /// Errors on a value outside its range, naming it.
    pub fn check(&self) -> Result<()> {
        let bad = |name: &str, v: String, why: &str| Err(ModelError::config(name, v, why));
        let (lo, hi) = self.crop_scale;
        if !(lo > 0.0 && lo <= hi && hi <= 1.0) {
            return bad(
                "crop_scale",
                format!("({lo}, {hi})"),
                "need 0 < lo ≤ hi ≤ 1",
            );
        }
        let (lo, hi) = self.aspect;
        if !(lo > 0.0 && lo <= hi && hi.is_finite()) {
            return bad("aspect", format!("({lo}, {hi})"), "need 0 < lo ≤ hi");
        }
        for (name, v) in [
            ("max_rotation_deg", self.max_rotation_deg),
            ("max_translate", self.max_translate),
            ("noise_std", self.noise_std),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(name, v.to_string(), "must be finite and ≥ 0");
            }
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return bad("jitter", self.jitter.to_string(), "must lie in [0, 1)");
        }
        if !(0.0..=1.0).contains(&self.erase_prob) {
            return bad(
                "erase probability",
                self.erase_prob.to_string(),
                "must lie in [0, 1]",
            );
        }
        let (lo, hi) = self.erase_area;
        if !(lo > 0.0 && lo <= hi && hi < 1.0) {
            return bad(
                "erase area",
                format!("({lo}, {hi})"),
                "need 0 < lo ≤ hi < 1",
            );
        }
        Ok(())
    }

    /// Draws one augmented view of `img` into `out` (both `shape.len()`
    /// values). `mean` and `std` are the data's pixel statistics: erased
    /// patches take the mean; noise and brightness shifts scale with `std`.
    pub fn apply(
        &self,
        img: &[f32],
        shape: ImageShape,
        mean: f32,
        std: f32,
        rng: &mut ChaCha8Rng,
        out: &mut [f32],
    ) {
        let ImageShape {
            channels: c,
            height: h,
            width: w,
        } = shape;
        debug_assert_eq!(img.len(), shape.len());
        debug_assert_eq!(out.len(), shape.len());
        // Output pixel centre p in [-1, 1]²; source = centre + R · S · p.
        let area = uniform(rng, self.crop_scale.0, self.crop_scale.1);
        let log_ar = uniform(rng, self.aspect.0.ln(), self.aspect.1.ln());
        let ar = log_ar.exp();
        let sx = (area * ar).sqrt().min(1.0);
        let sy = (area / ar).sqrt().min(1.0);
        let t = self.max_translate * 2.0;
        let cx = uniform(rng, -(1.0 - sx), 1.0 - sx) + uniform(rng, -t, t);
        let cy = uniform(rng, -(1.0 - sy), 1.0 - sy) + uniform(rng, -t, t);
        let theta = uniform(rng, -self.max_rotation_deg, self.max_rotation_deg).to_radians();
        let (sin, cos) = theta.sin_cos();
        let flip = self.flip && rng.random::<bool>();
        let contrast = uniform(rng, 1.0 - self.jitter, 1.0 + self.jitter);
        let shift = uniform(rng, -self.jitter, self.jitter) * std;
        for y in 0..h {
            let py = (y as f32 + 0.5) / h as f32 * 2.0 - 1.0;
            for x in 0..w {
                let mut px = (x as f32 + 0.5) / w as f32 * 2.0 - 1.0;
                if flip {
                    px = -px;
                }
                let (ax, ay) = (sx * px, sy * py);
                let qx = cx + cos * ax - sin * ay;
                let qy = cy + sin * ax + cos * ay;
                let u = (qx + 1.0) / 2.0 * w as f32 - 0.5;
                let v = (qy + 1.0) / 2.0 * h as f32 - 0.5;
                for ch in 0..c {
                    let plane = &img[ch * h * w..(ch + 1) * h * w];
                    let val = bilinear(plane, h, w, u, v);
                    out[ch * h * w + y * w + x] = mean + contrast * (val - mean) + shift;
                }
            }
        }
        if self.noise_std > 0.0 {
            let s = self.noise_std * std;
            for v in out.iter_mut() {
                *v += s * gaussian(rng);
            }
        }
        if rng.random::<f32>() < self.erase_prob {
            let frac = uniform(rng, self.erase_area.0, self.erase_area.1);
            let ar = uniform(rng, 0.3f32.ln(), (1.0f32 / 0.3).ln()).exp();
            let eh = ((frac / ar).sqrt() * h as f32).round().clamp(1.0, h as f32) as usize;
            let ew = ((frac * ar).sqrt() * w as f32).round().clamp(1.0, w as f32) as usize;
            let y0 = rng.random_range(0..=h - eh);
            let x0 = rng.random_range(0..=w - ew);
            for ch in 0..c {
                for y in y0..y0 + eh {
                    let row = ch * h * w + y * w;
                    out[row + x0..row + x0 + ew].fill(mean);
                }
            }
        }
    }
}

fn uniform(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    if hi <= lo {
        return lo;
    }
    lo + (hi - lo) * rng.random::<f32>()
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
    let u1 = 1.0 - rng.random::<f32>(); // (0, 1]
    let u2 = rng.random::<f32>();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Bilinear sample of one plane at continuous pixel coordinates, clamping to
/// the edge (the border of digits and most images is background).
fn bilinear(plane: &[f32], h: usize, w: usize, u: f32, v: f32) -> f32 {
    let u = u.clamp(0.0, (w - 1) as f32);
    let v = v.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (u.floor() as usize, v.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (u - x0 as f32, v - y0 as f32);
    let at = |y: usize, x: usize| plane[y * w + x];
    let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
    let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
    top * (1.0 - fy) + bottom * fy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> AugmentParams {
        AugmentParams::new()
            .crop_scale(1.0, 1.0)
            .aspect(1.0, 1.0)
            .max_rotation_deg(0.0)
            .max_translate(0.0)
            .jitter(0.0)
            .noise_std(0.0)
            .erase(0.0, 0.1, 0.1)
    }

    #[test]
    fn identity_settings_reproduce_the_image() {
        let shape = ImageShape::from_example_shape(&[64]).unwrap();
        assert_eq!((shape.channels, shape.height), (1, 8));
        let img: Vec<f32> = (0..64).map(|i| (i * 7 % 13) as f32).collect();
        let mut out = vec![0.0; 64];
        identity().check().unwrap();
        identity().apply(
            &img,
            shape,
            3.0,
            1.0,
            &mut wellspring_core::rng(0),
            &mut out,
        );
        for (a, b) in img.iter().zip(&out) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        // a flip mirrors columns exactly
        let mut flipped = vec![0.0; 64];
        let p = identity().flip(true);
        let mut seed = 0;
        loop {
            p.apply(
                &img,
                shape,
                0.0,
                1.0,
                &mut wellspring_core::rng(seed),
                &mut flipped,
            );
            if flipped != out {
                break;
            }
            seed += 1;
        }
        for y in 0..8 {
            for x in 0..8 {
                assert!((flipped[y * 8 + x] - img[y * 8 + 7 - x]).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn views_are_seeded_and_distinct() {
        let shape = ImageShape::from_example_shape(&[1, 28, 28]).unwrap();
        let img: Vec<f32> = (0..784).map(|i| (i % 28) as f32 / 28.0).collect();
        let p = AugmentParams::new();
        let draw = |seed| {
            let mut out = vec![0.0; 784];
            p.apply(
                &img,
                shape,
                0.5,
                0.3,
                &mut wellspring_core::rng(seed),
                &mut out,
            );
            out
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        assert!(draw(3).iter().all(|v| v.is_finite()));
    }

    #[test]
    fn shapes_and_params_are_checked() {
        assert_eq!(
            ImageShape::from_example_shape(&[3072]).unwrap(),
            ImageShape {
                channels: 3,
                height: 32,
                width: 32
            }
        );
        assert!(ImageShape::from_example_shape(&[30]).is_err());
        assert!(ImageShape::from_example_shape(&[2, 3, 4, 5]).is_err());
        let e = AugmentParams::new()
            .crop_scale(0.0, 1.0)
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("crop_scale"), "{e}");
        assert!(AugmentParams::new().jitter(1.0).check().is_err());
        assert!(AugmentParams::new().erase(1.5, 0.1, 0.2).check().is_err());
        assert!(AugmentParams::new().noise_std(f32::NAN).check().is_err());
        assert!(AugmentParams::natural_images().check().is_ok());
    }
}
