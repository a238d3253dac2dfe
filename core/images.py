"""Decode images with Pillow into fixed-size RGB uint8 arrays, in parallel, with a disk cache.

The crop policy and size are part of a model's preprocessing: training, evaluation and
prediction all go through `read_image`, so they see identical pixels.
"""

from __future__ import annotations

import errno
import json
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core import paths
from core.dataset import Dataset
from core.errors import CancelledError, ImageError

# A decompression bomb is refused, not merely warned about (a filter, not catch_warnings,
# which is not thread-safe and images decode in parallel threads).
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)

CROP_POLICIES = ("squash", "center")
CACHE_VERSION = 1

ProgressFn = Callable[[int, int], None]
StopFn = Callable[[], bool]


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if arr.max() > 255 else 255.0
        img = Image.fromarray((arr / peak * 255).clip(0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def open_image(path: str | Path, draft: int | None = None) -> Image.Image:
    """Decode one image upright as RGB; raise `ImageError` with the reason.

    With `draft`, a JPEG is decoded at a reduced scale that is still at least that size.
    """
    path = Path(path)
    try:
        with Image.open(path) as opened:
            if draft and opened.format == "JPEG":
                opened.draft("RGB", (draft, draft))
            return _to_rgb(ImageOps.exif_transpose(opened))
    except FileNotFoundError as exc:
        raise ImageError(f"{path.name}: file not found") from exc
    except PermissionError as exc:
        raise ImageError(f"{path.name}: permission denied") from exc
    except IsADirectoryError as exc:
        raise ImageError(f"{path.name}: is a folder, not an image") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{path.name}: not an image Pillow can read") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path.name}: too large to decode safely "
                         f"(over {Image.MAX_IMAGE_PIXELS} pixels)") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageError(f"{path.name}: symbolic link loop") from exc
        raise ImageError(f"{path.name}: damaged or truncated image ({exc})") from exc
    except Exception as exc:  # Pillow raises many types on hostile files
        raise ImageError(f"{path.name}: damaged image ({type(exc).__name__}: {exc})") from exc


def center_square(img: Image.Image) -> Image.Image:
    """The largest centred square of `img`."""
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return img.crop((left, top, left + side, top + side))


def read_image(path: str | Path, size: int, crop: str = "squash") -> np.ndarray:
    """Decode one image to a (size, size, 3) uint8 array; raise `ImageError` with the reason.

    ``squash`` resizes the whole frame to a square (the study's way); ``center`` takes the
    largest centred square first, keeping the aspect ratio.
    """
    if crop not in CROP_POLICIES:
        raise ValueError(f"unknown crop policy {crop!r}; choose from {CROP_POLICIES}")
    img = open_image(path, draft=size)
    if crop == "center":
        img = center_square(img)
    img = img.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def decode_many(paths_: Sequence[str | Path], size: int, crop: str = "squash", *,
                on_progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                workers: int | None = None) -> tuple[np.ndarray, dict[int, str]]:
    """Decode many images in parallel threads (Pillow releases the GIL while decoding).

    Returns the stacked array (failed images left as zeros) and {index: reason} of failures.
    """
    n = len(paths_)
    out = np.zeros((n, size, size, 3), dtype=np.uint8)
    failures: dict[int, str] = {}

    def work(i: int) -> None:
        try:
            out[i] = read_image(paths_[i], size, crop)
        except ImageError as exc:
            failures[i] = str(exc)

    workers = workers or min(32, (os.cpu_count() or 2) * 2)
    chunk = 64
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, n, chunk):
            if should_stop and should_stop():
                raise CancelledError("image loading was stopped")
            list(pool.map(work, range(start, min(n, start + chunk))))
            if on_progress:
                on_progress(min(n, start + chunk), n)
    return out, failures


@dataclass
class ImageSet:
    """Decoded images aligned with `Dataset.records` (row i of `records` is `images[i]`)."""

    images: np.ndarray
    from_cache: bool


def _cache_folder(dataset: Dataset, size: int, crop: str) -> Path:
    key = f"v{CACHE_VERSION}-{dataset.fingerprint()}-{size}px-{crop}"
    return paths.cache_dir() / "images" / key


def load_images(dataset: Dataset, size: int, crop: str = "squash", *, use_cache: bool = True,
                on_progress: ProgressFn | None = None,
                should_stop: StopFn | None = None) -> ImageSet:
    """Decode every image of `dataset` at `size` px, through the on-disk cache.

    Unreadable images are dropped from `dataset.records` and listed in its problems.
    """
    folder = _cache_folder(dataset, size, crop)
    ids = list(dataset.records["image_id"])
    if use_cache and (folder / "index.json").exists():
        try:
            index = json.loads((folder / "index.json").read_text())
            images = np.load(folder / "images.npy")
            if index["image_ids"] == ids and len(images) == len(ids):
                dataset.drop_images(index["failures"])
                keep = [i for i, image_id in enumerate(ids) if image_id not in index["failures"]]
                if on_progress:
                    on_progress(len(ids), len(ids))
                return ImageSet(images[keep] if index["failures"] else images, True)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is rebuilt below
    images, failures = decode_many(list(dataset.records["path"]), size, crop,
                                   on_progress=on_progress, should_stop=should_stop)
    by_id = {ids[i]: reason for i, reason in failures.items()}
    if use_cache:
        _write_cache(folder, images, ids, by_id)
    dataset.drop_images(by_id)
    keep = [i for i in range(len(ids)) if i not in failures]
    return ImageSet(images[keep] if failures else images, False)


def _write_cache(folder: Path, images: np.ndarray, ids: list[str],
                 failures: dict[str, str]) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with paths.atomic_path(folder / "images.npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, images)
        paths.write_text_atomic(folder / "index.json",
                                json.dumps({"image_ids": ids, "failures": failures}))
    except OSError:
        pass  # caching is an optimisation: a full or read-only disk must not stop loading
