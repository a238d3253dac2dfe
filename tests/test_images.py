"""Image decoding: sizes, crop policies, modes, cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.dataset import load_dataset
from core.errors import ImageError
from core.images import decode_many, load_images, read_image


@pytest.mark.parametrize("frame", [(600, 450), (200, 150)])
@pytest.mark.parametrize("crop", ["squash", "center"])
def test_full_and_downscaled_frames_give_the_same_shape(tmp_path: Path, frame, crop) -> None:
    path = tmp_path / "x.jpg"
    Image.new("RGB", frame, (120, 60, 30)).save(path)
    out = read_image(path, 32, crop)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert abs(int(out[16, 16, 0]) - 120) < 6


def test_center_crop_keeps_aspect_and_squash_keeps_the_whole_frame(tmp_path: Path) -> None:
    img = np.zeros((150, 200, 3), dtype=np.uint8)
    img[:, :25] = 255  # a white band on the left edge, outside the centred square
    Image.fromarray(img).save(tmp_path / "band.png")
    assert read_image(tmp_path / "band.png", 20, "center").max() == 0
    assert read_image(tmp_path / "band.png", 20, "squash")[:, 0].min() > 200


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "I;16"])
def test_other_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    suffix = ".jpg" if mode == "CMYK" else ".png"
    path = tmp_path / f"img{suffix}"
    Image.new("RGB", (40, 30), (10, 200, 30)).convert(mode).save(path)
    assert read_image(path, 16).shape == (16, 16, 3)


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "the file is empty"), (b"hello world", "not an image"),
])
def test_unreadable_files_raise_image_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=reason):
        read_image(path, 16)


def test_truncated_jpeg_raises_image_error(tmp_path: Path) -> None:
    path = tmp_path / "t.jpg"
    Image.effect_noise((64, 64), 50).convert("RGB").save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ImageError):
        read_image(path, 16)


def test_decode_many_reports_failures_by_index(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    Image.new("RGB", (8, 8), "red").save(good)
    (tmp_path / "bad.png").write_text("x")
    seen: list[tuple[int, int]] = []
    images, failures = decode_many([good, tmp_path / "bad.png", good], 8,
                                   on_progress=lambda d, t: seen.append((d, t)))
    assert images.shape == (3, 8, 8, 3) and set(failures) == {1}
    assert seen[-1] == (3, 3)


def test_second_load_comes_from_cache_and_matches(ham_dir: Path) -> None:
    first = load_images(load_dataset(ham_dir), 24)
    second = load_images(load_dataset(ham_dir), 24)
    assert not first.from_cache and second.from_cache
    np.testing.assert_array_equal(first.images, second.images)
    other_size = load_images(load_dataset(ham_dir), 12)
    assert not other_size.from_cache


def _pillow_only(path: Path, size: int, crop: str) -> np.ndarray:
    """The decode before the libjpeg-turbo fast path: Pillow's draft, transpose, resize."""
    from PIL import ImageOps

    from core.images import _to_rgb, center_square

    with Image.open(path) as opened:
        if opened.format == "JPEG":
            opened.draft("RGB", (size, size))
        img = _to_rgb(ImageOps.exif_transpose(opened))
    if crop == "center":
        img = center_square(img)
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


@pytest.mark.parametrize("frame", [(600, 450), (200, 150), (37, 53)])
@pytest.mark.parametrize("size", [16, 64, 224])
@pytest.mark.parametrize("crop", ["squash", "center"])
def test_jpeg_fast_path_gives_pillows_pixels(tmp_path: Path, frame, size: int, crop: str) -> None:
    rng = np.random.default_rng(frame[0] + size)
    pixels = rng.integers(0, 256, (frame[1], frame[0], 3), dtype=np.uint8)
    path = tmp_path / "x.jpg"
    Image.fromarray(pixels).save(path, quality=90)
    from core.images import _jpeg_draft

    assert _jpeg_draft(path, size) is not None  # the fast path was taken
    assert np.array_equal(read_image(path, size, crop), _pillow_only(path, size, crop))


def test_jpeg_with_exif_orientation_goes_the_pillow_way(tmp_path: Path) -> None:
    pixels = np.zeros((30, 60, 3), dtype=np.uint8)
    pixels[:, :30] = 255  # white left half; orientation 6 rotates it to the top
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    from core.images import _jpeg_draft

    assert _jpeg_draft(path, 16) is None
    out = read_image(path, 16)
    assert np.array_equal(out, _pillow_only(path, 16, "squash"))
    assert out[:4].mean() > 200 and out[-4:].mean() < 50  # upright: the white half on top
