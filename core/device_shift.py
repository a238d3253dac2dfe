"""A dermoscopic image as another device or clinic might have taken it.

Random views that change what a device changes (framing and zoom, resolution, sharpness,
white balance, hue, gamma, JPEG, a round field of view) and not what the lesion is. The
modality check is fitted and validated on them (`tools/train_modality.py`), and the shipped
model's familiarity gate sets its threshold on them (`core.trust.refit_for_shipping`), so
that neither refuses an image only because another dermatoscope took it.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter


def drawn_hairs(view: Image.Image, rng: np.random.Generator) -> Image.Image:
    """2 to 20 thin, dark, gently curved hairs across a copy of `view`."""
    view = view.copy()
    draw = ImageDraw.Draw(view)
    size = view.width
    t = np.linspace(0.0, 1.0, 9)[:, None]
    for _ in range(int(rng.integers(2, 21))):
        start, angle = rng.uniform(0, size, 2), rng.uniform(0, 2 * np.pi)
        end = start + rng.uniform(0.3, 1.0) * size * np.array([np.cos(angle), np.sin(angle)])
        bend = (start + end) / 2 + rng.normal(0, 0.1 * size, 2)
        curve = (1 - t) ** 2 * start + 2 * t * (1 - t) * bend + t ** 2 * end
        shade = int(rng.integers(10, 90))
        colour = (shade + int(rng.integers(0, 30)), shade + int(rng.integers(0, 15)), shade)
        draw.line([tuple(point) for point in curve], fill=colour,
                  width=int(rng.integers(1, 3)))
    return view


def shifted_view(img: Image.Image, size: int, rng: np.random.Generator,
                 field: float = 0.25, hair: float = 0.0) -> np.ndarray:
    """One random view: a zoom crop or the whole frame, turns and flips, and what another
    device or clinic changes: sharpness, resolution, white balance, hue, gamma and JPEG, the
    same for every kind of image, so none of these tells them apart (docs/modality-check.md:
    sharpening dermoscopic images more often than photos lowered the validation score;
    sharpness is partly a real cue). A round field of view on a `field` share of the views:
    the caller's rate for the kind, since a camera shows none and a dermatoscope often does.
    Hairs drawn on a `hair` share (no random draw at all when 0, so that views made without
    hairs stay as they were)."""
    w, h = img.size
    u = rng.random()
    if u < 0.2:
        view = img
    else:
        side = int(min(w, h) * (1.0 if u < 0.4 else rng.uniform(0.5, 1.0)))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        view = img.crop((x, y, x + side, y + side))
    if rng.random() < 0.3:  # lower resolution, as a small or re-encoded source gives
        small = int(rng.integers(40, 120))
        view = view.resize((small, small), Image.Resampling.BILINEAR)
    view = view.resize((size, size), Image.Resampling.BILINEAR)
    if hair and rng.random() < hair:  # hair grows on every kind of skin photo alike
        view = drawn_hairs(view, rng)
    view = view.rotate(90 * int(rng.integers(4)))
    if rng.random() < 0.5:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    for enhance, low, high in ((ImageEnhance.Brightness, 0.7, 1.3),
                               (ImageEnhance.Contrast, 0.7, 1.3), (ImageEnhance.Color, 0.5, 1.4)):
        view = enhance(view).enhance(float(rng.uniform(low, high)))
    if rng.random() < 0.3:  # hue: another light source or sensor
        hsv = np.asarray(view.convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(int) + int(rng.integers(-15, 16))) % 256
        view = Image.fromarray(hsv, "HSV").convert("RGB")
    if rng.random() < 0.2:
        view = view.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.5))))
    elif rng.random() < 0.4:  # a sharper optic or sensor than HAM10000's copies show
        view = view.filter(ImageFilter.UnsharpMask(radius=float(rng.uniform(0.8, 2.0)),
                                                   percent=int(rng.integers(50, 220))))
    a: np.ndarray = np.asarray(view, dtype=np.float32)
    if rng.random() < 0.6:  # white balance (warm, cold, green casts) and gamma
        a = a * rng.uniform(0.75, 1.25, 3)
        a = 255.0 * (np.clip(a, 0, 255) / 255.0) ** rng.uniform(0.8, 1.25)
    if rng.random() < field:  # the round field of view of many dermatoscopes
        yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size - 0.5
        radius = rng.uniform(0.45, 0.75)
        a = a * np.clip((radius - np.hypot(yy, xx)) * size / 4, 0, 1)[..., None]
    view = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        buffer = io.BytesIO()
        view.save(buffer, format="JPEG", quality=int(rng.integers(50, 95)))
        view = Image.open(buffer).convert("RGB")
    return np.asarray(view)


def shifted_views(images: np.ndarray, rng: np.random.Generator,
                  field: float = 0.4) -> np.ndarray:
    """One shifted view of each uint8 image (n, size, size, 3), at the same size; a round
    field on a `field` share (0.4: the modality check's rate for dermoscopic views)."""
    if len(images) == 0:
        return np.asarray(images)
    size = images.shape[1]
    return np.stack([shifted_view(Image.fromarray(np.asarray(a)), size, rng, field)
                     for a in images])
