"""Views of an image as another device might take it: the shipped gate's threshold and the
modality check's fit rest on them."""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.device_shift import drawn_hairs, shifted_view, shifted_views


def test_shifted_views_keep_size_and_change_the_pixels() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(60, 200, (6, 32, 32, 3)).astype(np.uint8)
    views = shifted_views(images, np.random.default_rng(1))
    assert views.shape == images.shape and views.dtype == np.uint8
    assert all(not np.array_equal(v, a) for v, a in zip(views, images, strict=True))
    again = shifted_views(images, np.random.default_rng(1))
    np.testing.assert_array_equal(views, again)  # a fixed seed gives the same threshold


def test_drawn_hairs_are_thin_dark_lines_on_a_bright_skin() -> None:
    skin = Image.new("RGB", (160, 160), (225, 180, 150))
    hairy = np.asarray(drawn_hairs(skin, np.random.default_rng(3)))
    dark = hairy.max(axis=2) < 130
    assert 0.002 < dark.mean() < 0.25  # some lines, not a dark frame
    assert (hairy[~dark] == (225, 180, 150)).all()


def test_hair_rate_decides_whether_a_view_has_hairs() -> None:
    skin = Image.new("RGB", (40, 30), (230, 200, 170))
    rng = np.random.default_rng(5)
    bare = [shifted_view(skin, 64, rng, field=0.0) for _ in range(10)]
    hairy = [shifted_view(skin, 64, rng, field=0.0, hair=1.0) for _ in range(10)]
    assert all(v.max(axis=2).min() > 140 for v in bare)
    assert all(v.max(axis=2).min() < 130 for v in hairy)
