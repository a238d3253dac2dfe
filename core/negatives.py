"""Synthetic images that are not dermoscopic: negatives for the modality check.

Used to train the check (`tools/train_modality.py`), by `bench/ood.py` and by the tests.
Numpy and Pillow only; `sample_crops` also reads the sample images that scikit-image ships
(a retina photo, an immunohistochemistry slide, cells, a CT phantom, photos), when it is
installed. Every generator takes a numpy `Generator` and returns one uint8 (size, size, 3).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Maker = Callable[[np.random.Generator, int], np.ndarray]
WORDS = ("patient", "report", "image", "lesion", "settings", "export", "file", "date", "scan",
         "result", "OK", "Cancel", "Open", "Save", "total", "page", "figure", "2026", "12.5 mm")


def _smooth_noise(rng: np.random.Generator, size: int, scale: int) -> np.ndarray:
    """Noise of feature size ~ size/scale, values 0..1, (size, size)."""
    small = rng.random((max(scale, 2), max(scale, 2))).astype(np.float32)
    img = Image.fromarray((small * 255).astype(np.uint8)).resize((size, size),
                                                                Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32) / 255.0


def _to_uint8(a: np.ndarray) -> np.ndarray:
    a = np.clip(a, 0, 255).astype(np.uint8)
    return np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a


def flat_colour(rng: np.random.Generator, size: int) -> np.ndarray:
    """One colour, skin tones half the time, with a little sensor noise."""
    colour = rng.uniform([150, 90, 70], [240, 190, 170]) if rng.random() < 0.5 \
        else rng.uniform(0, 255, 3)
    return _to_uint8(colour + rng.normal(0, rng.uniform(0, 4), (size, size, 3)))


def gradient(rng: np.random.Generator, size: int) -> np.ndarray:
    """A linear or radial blend of two colours."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    if rng.random() < 0.5:
        w = rng.normal(size=2)
        t = w[0] * yy + w[1] * xx
    else:
        cy, cx = rng.random(2)
        t = np.hypot(yy - cy, xx - cx)
    t = (t - t.min()) / (np.ptp(t) + 1e-6)
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    return _to_uint8(a + t[..., None] * (b - a))


def noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """White, coloured or smooth noise."""
    kind = rng.integers(3)
    if kind == 0:
        return _to_uint8(rng.integers(0, 256, (size, size, 3)))
    if kind == 1:
        return _to_uint8(rng.uniform(0, 255, 3) + rng.normal(0, 40, (size, size, 3)))
    scale = int(rng.integers(3, 40))
    return _to_uint8(np.stack([_smooth_noise(rng, size, scale) for _ in range(3)], -1) * 255)


def text_page(rng: np.random.Generator, size: int) -> np.ndarray:
    """Lines of words on a light or dark page, as a document or a terminal shows them."""
    dark = rng.random() < 0.3
    img = Image.new("RGB", (size, size), (30, 30, 34) if dark else (250, 250, 246))
    draw = ImageDraw.Draw(img)
    ink = (220, 220, 220) if dark else tuple(int(v) for v in rng.integers(0, 80, 3))
    step = int(rng.integers(10, 24))
    for y in range(4, size - 8, step):
        words = " ".join(rng.choice(WORDS, int(rng.integers(2, 8))))
        draw.text((int(rng.integers(2, 20)), y), words, fill=ink)
    return np.asarray(img)


def screenshot(rng: np.random.Generator, size: int) -> np.ndarray:
    """Window-like blocks: a title bar, panels, buttons and labels."""
    img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(200, 250, 3)))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, size, int(rng.integers(12, 28))),
                   fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    for _ in range(int(rng.integers(3, 10))):
        x, y = (int(v) for v in rng.integers(0, size * 3 // 4, 2))
        w, h = int(rng.integers(20, size // 2)), int(rng.integers(10, size // 3))
        draw.rectangle((x, y, x + w, y + h), fill=tuple(int(v) for v in rng.integers(0, 256, 3)),
                       outline=(90, 90, 90))
        draw.text((x + 3, y + 2), str(rng.choice(WORDS)), fill=(0, 0, 0))
    return np.asarray(img)


def checkerboard(rng: np.random.Generator, size: int) -> np.ndarray:
    """Squares of two colours."""
    period = int(rng.integers(4, 40))
    cells = ((np.mgrid[0:size, 0:size] // period).sum(axis=0) % 2)[..., None]
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    return _to_uint8(a + cells * (b - a))


def histology(rng: np.random.Generator, size: int) -> np.ndarray:
    """An H&E-like tile: pink eosin stroma with fibres, purple haematoxylin nuclei."""
    pink = np.array([235, 170, 205]) + rng.normal(0, 12, 3)
    stroma = _smooth_noise(rng, size, int(rng.integers(8, 30)))
    fibres = _smooth_noise(rng, size, int(rng.integers(40, 90)))
    a = pink[None, None] * (0.75 + 0.25 * stroma[..., None]) - 40 * (fibres[..., None] > 0.6)
    a = np.where(_smooth_noise(rng, size, 6)[..., None] > 0.8, 245, a)  # lumens, fat
    img = Image.fromarray(_to_uint8(a))
    draw = ImageDraw.Draw(img)
    purple = np.array([95, 45, 140]) + rng.normal(0, 15, 3)
    for _ in range(int(rng.integers(40, 400))):
        x, y = rng.uniform(0, size, 2)
        rx, ry = rng.uniform(2, 7, 2) * size / 224
        shade = tuple(int(v) for v in np.clip(purple * rng.uniform(0.7, 1.3), 0, 255))
        draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=shade)
    return np.asarray(img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.2))))


def grey_scan(rng: np.random.Generator, size: int) -> np.ndarray:
    """An X-ray, CT or MRI-like grey image: bright bony shapes on dark, noise, vignette."""
    yy, xx = (np.mgrid[0:size, 0:size] / size) - 0.5
    body = np.exp(-((xx / rng.uniform(0.25, 0.5)) ** 2 + (yy / rng.uniform(0.3, 0.6)) ** 2))
    a = 40 + 120 * body * (0.6 + 0.4 * _smooth_noise(rng, size, int(rng.integers(4, 16))))
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 12))):
        x, y = rng.uniform(0.1, 0.9, 2) * size
        rx, ry = rng.uniform(0.02, 0.25, 2) * size
        draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=int(rng.integers(120, 255)))
    a = np.asarray(img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3))), dtype=np.float32)
    if rng.random() < 0.5:  # CT/MRI: a dark disc around the body
        a = a * (np.hypot(xx, yy) < rng.uniform(0.4, 0.55))
    return _to_uint8(a + rng.normal(0, rng.uniform(1, 10), a.shape))


def fundus(rng: np.random.Generator, size: int) -> np.ndarray:
    """A retina photo: an orange-red disc on black, a pale optic disc, dark vessels."""
    yy, xx = (np.mgrid[0:size, 0:size] / size) - 0.5
    r = np.hypot(xx, yy)
    base = np.array([200, 80, 30]) + rng.normal(0, 20, 3)
    a = base[None, None] * (1 - 0.6 * r[..., None]) * \
        (0.85 + 0.15 * _smooth_noise(rng, size, 10)[..., None])
    img = Image.fromarray(_to_uint8(a))
    draw = ImageDraw.Draw(img)
    cx, cy = (0.5 + rng.uniform(-0.25, 0.25)) * size, (0.5 + rng.uniform(-0.1, 0.1)) * size
    for _ in range(int(rng.integers(6, 14))):
        points = [(cx, cy)]
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(8):
            angle += rng.normal(0, 0.3)
            x, y = points[-1]
            points.append((x + np.cos(angle) * size / 10, y + np.sin(angle) * size / 10))
        draw.line(points, fill=(120, 20, 10), width=int(rng.integers(1, 4)))
    rd = rng.uniform(0.04, 0.08) * size
    draw.ellipse((cx - rd, cy - rd, cx + rd, cy + rd), fill=(250, 220, 150))
    a = np.asarray(img.filter(ImageFilter.GaussianBlur(1.0)), dtype=np.float32)
    return _to_uint8(a * (r < rng.uniform(0.42, 0.5))[..., None])


def _skimage_samples() -> list[np.ndarray]:
    try:
        from skimage import data
    except ImportError:
        return []
    names = ("astronaut", "camera", "cell", "chelsea", "coffee", "coins", "colorwheel", "grass",
             "gravel", "hubble_deep_field", "immunohistochemistry", "microaneurysms", "moon",
             "page", "retina", "rocket", "shepp_logan_phantom", "text", "brick", "horse", "logo")
    out = []
    for name in names:
        try:
            img = np.asarray(getattr(data, name)())
        except Exception:  # a sample that must be downloaded is skipped (no network)
            continue
        if img.dtype != np.uint8:
            img = img.astype(np.float64)
            img = (255 * (img - img.min()) / (np.ptp(img) + 1e-9)).astype(np.uint8)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        out.append(img[..., :3])
    return out


_SAMPLES: list[np.ndarray] | None = None


def sample_crop(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random crop of one of scikit-image's sample images (a gradient without them)."""
    global _SAMPLES
    if _SAMPLES is None:
        _SAMPLES = _skimage_samples()
    if not _SAMPLES:
        return gradient(rng, size)
    img = _SAMPLES[int(rng.integers(len(_SAMPLES)))]
    h, w = img.shape[:2]
    side = int(min(h, w) * rng.uniform(0.3, 1.0))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = Image.fromarray(img[y:y + side, x:x + side]).resize((size, size),
                                                              Image.Resampling.BILINEAR)
    return np.asarray(crop)


KINDS: dict[str, Maker] = {
    "flat colour": flat_colour, "gradient": gradient, "noise": noise, "text page": text_page,
    "screenshot": screenshot, "checkerboard": checkerboard, "histology (H&E-like)": histology,
    "grey scan (X-ray/CT/MRI-like)": grey_scan, "fundus-like": fundus,
    "scikit-image sample crops": sample_crop,
}


def make(kind: str, n: int, size: int = 224, seed: int = 0) -> np.ndarray:
    """`n` images of one kind (uint8, (n, size, size, 3)), reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    return np.stack([KINDS[kind](rng, size) for _ in range(n)])


def folder_part(name: str) -> str:
    """'fit' (60%), 'val' (20%) or 'test' (20%) for a file of the shared negative folders,
    fixed by its name: the modality check is fitted, tuned and measured on separate files."""
    k = int(hashlib.sha1(name.encode()).hexdigest(), 16) % 10
    return "fit" if k < 6 else "val" if k < 8 else "test"
