"""Decode images with Pillow into fixed-size RGB uint8 arrays, in parallel, with a disk cache.

The crop policy and size are part of a model's preprocessing: training, evaluation and
prediction all go through `read_image`, so they see identical pixels.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import simplejpeg
from PIL import Image, ImageOps, UnidentifiedImageError

from core import paths
from core.dataset import Dataset
from core.errors import CancelledError, ImageError

# A decompression bomb is refused, not merely warned about (a filter, not catch_warnings,
# which is not thread-safe and images decode in parallel threads).
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)

CROP_POLICIES = ("squash", "center")
ORIENTATION = 0x0112  # the EXIF tag exif_transpose reads
TASK = 16  # images per thread-pool task
JPEG_MAX_BYTES = 64 * 2**20  # a larger "JPEG" is left to Pillow's own checks
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


def _jpeg_draft(path: Path, draft: int) -> Image.Image | None:
    """A plain JPEG decoded by libjpeg-turbo directly at Pillow's `draft` scale, or None.

    The same decoder (both wheels bundle libjpeg-turbo), scale and colour conversion as
    Pillow's draft decode, so the same pixels (tests/test_images.py and test_real_data.py
    compare them), without Pillow's per-image Python work (marker parsing, copies), which
    holds the GIL and kept the decoding threads from using both cores. Anything else (an
    EXIF orientation, a file the strict decoder refuses) goes the Pillow way.
    """
    with open(path, "rb") as fh:
        # read(), not read(limit): a limit is allocated up front, 64 MiB per image
        if os.fstat(fh.fileno()).st_size > JPEG_MAX_BYTES:
            return None
        data = fh.read()
    if not data.startswith(b"\xff\xd8\xff") or data.find(b"Exif\x00\x00", 0, 65536) >= 0:
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        if colorspace != "YCbCr" or width * height > Image.MAX_IMAGE_PIXELS:
            return None
        scale = min(width // draft, height // draft)
        scale = next((s for s in (8, 4, 2, 1) if scale >= s), 1)  # Pillow's draft rule
        pixels = simplejpeg.decode_jpeg(data, colorspace="RGB", min_factor=scale,
                                        min_height=-(-height // scale),
                                        min_width=-(-width // scale))
    except ValueError:
        return None
    return Image.fromarray(pixels, "RGB")


def open_image(path: str | Path, draft: int | None = None) -> Image.Image:
    """Decode one image upright as RGB; raise `ImageError` with the reason.

    With `draft`, a JPEG is decoded at a reduced scale that is still at least that size.
    """
    path = Path(path)
    try:
        fast = _jpeg_draft(path, draft) if draft else None
        if fast is not None:
            return fast
        with Image.open(path) as opened:
            if draft and opened.format == "JPEG":
                opened.draft("RGB", (draft, draft))
            if opened.mode == "RGB" and opened.getexif().get(ORIENTATION, 1) == 1:
                opened.load()  # already upright RGB: skip the two copies below (same pixels)
                return opened
            return _to_rgb(ImageOps.exif_transpose(opened))
    except FileNotFoundError as exc:
        raise ImageError(f"{path.name}: file not found") from exc
    except PermissionError as exc:
        raise ImageError(f"{path.name}: permission denied") from exc
    except IsADirectoryError as exc:
        raise ImageError(f"{path.name}: is a folder, not an image") from exc
    except UnidentifiedImageError as exc:
        empty = path.is_file() and path.stat().st_size == 0
        raise ImageError(f"{path.name}: " + ("the file is empty (0 bytes)" if empty else
                                            "not an image file (or an unsupported format)")
                         ) from exc
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


def iter_decoded(paths_: Sequence[str | Path], size: int, crop: str, failures: dict[int, str],
                 *, should_stop: StopFn | None = None, workers: int | None = None,
                 chunk: int = 256) -> Iterator[tuple[int, np.ndarray]]:
    """Decode in parallel threads, yielding (start, images) chunk by chunk, in order.

    While the caller handles a chunk, the threads decode the next one. Failed images are
    left as zeros and recorded in `failures` ({index: reason}). Only two chunks are held.
    Each task decodes `TASK` images: one future per image cost more CPU in hand-offs
    between threads than a JPEG takes to decode.
    """
    n = len(paths_)

    def work(first: int, out: np.ndarray, row: int, count: int) -> None:
        for k in range(count):
            try:
                out[row + k] = read_image(paths_[first + k], size, crop)
            except ImageError as exc:
                failures[first + k] = str(exc)

    def submit(start: int) -> tuple[int, np.ndarray, list[Future[None]]]:
        out = np.zeros((min(n, start + chunk) - start, size, size, 3), dtype=np.uint8)
        return start, out, [pool.submit(work, start + r, out, r, min(TASK, len(out) - r))
                            for r in range(0, len(out), TASK)]

    workers = workers or os.cpu_count() or 2
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = submit(0) if n else None
        while pending:
            start, out, futures = pending
            for future in futures:
                future.result()
            if should_stop and should_stop():
                raise CancelledError("image loading was stopped")
            pending = submit(start + chunk) if start + chunk < n else None
            yield start, out


def decode_many(paths_: Sequence[str | Path], size: int, crop: str = "squash", *,
                on_progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                workers: int | None = None,
                on_chunk: Callable[[np.ndarray], None] | None = None
                ) -> tuple[np.ndarray, dict[int, str]]:
    """Decode many images in parallel threads (see `iter_decoded`).

    Returns the stacked array (failed images left as zeros) and {index: reason} of failures.
    `on_chunk` receives each decoded chunk in order, in this thread, while the workers
    decode the next one (the cold load writes its cache that way instead of afterwards).
    """
    n = len(paths_)
    out = np.zeros((n, size, size, 3), dtype=np.uint8)
    failures: dict[int, str] = {}
    for start, images in iter_decoded(paths_, size, crop, failures, should_stop=should_stop,
                                      workers=workers):
        out[start:start + len(images)] = images
        if on_chunk:
            on_chunk(images)
        if on_progress:
            on_progress(start + len(images), n)
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
    with cache_writer(folder, len(ids), size, use_cache) as writer:
        images, failures = decode_many(list(dataset.records["path"]), size, crop,
                                       on_progress=on_progress, should_stop=should_stop,
                                       on_chunk=writer.write if writer else None)
        by_id = {ids[i]: reason for i, reason in failures.items()}
        if writer:
            writer.finish(ids, by_id)
    dataset.drop_images(by_id)
    keep = [i for i in range(len(ids)) if i not in failures]
    return ImageSet(images[keep] if failures else images, False)


@contextmanager
def cache_writer(folder: Path, n: int, size: int, enabled: bool
                 ) -> Iterator[_CacheWriter | None]:
    """A writer of `n` decoded images into the cache `folder` (None when caching is off);
    its partial file is removed if the block fails or is stopped."""
    writer = _CacheWriter(folder, (n, size, size, 3)) if enabled else None
    try:
        yield writer
    except BaseException:
        if writer:
            writer.abandon()
        raise


class _CacheWriter:
    """Writes the cache's images.npy chunk by chunk as they are decoded, then its index.

    Caching is an optimisation: a full or read-only disk turns it off, never stops loading.
    """

    def __init__(self, folder: Path, shape: tuple[int, ...]) -> None:
        self.folder = folder
        self.fh: BinaryIO | None = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=".images.npy.", dir=folder)
            self.tmp = Path(name)
            self.fh = os.fdopen(fd, "wb")
            np.lib.format.write_array_header_1_0(
                self.fh, {"descr": "|u1", "fortran_order": False, "shape": shape})
        except OSError:
            self.abandon()

    def write(self, chunk: np.ndarray) -> None:
        if self.fh:
            try:
                self.fh.write(np.ascontiguousarray(chunk).data)
            except OSError:
                self.abandon()

    def finish(self, ids: list[str], failures: dict[str, str]) -> None:
        if not self.fh:
            return
        try:
            self.fh.close()
            self.fh = None
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)  # mkstemp makes 0600
            paths.durable_replace(self.tmp, self.folder / "images.npy")
            paths.write_text_atomic(self.folder / "index.json",
                                    json.dumps({"image_ids": ids, "failures": failures}))
        except OSError:
            self.abandon()

    def abandon(self) -> None:
        if self.fh:
            self.fh.close()
            self.fh = None
        if hasattr(self, "tmp"):
            self.tmp.unlink(missing_ok=True)
