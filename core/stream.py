"""Images read and decoded while training (`train --stream`), never all in memory at once.

`stream_images` makes one pass over the dataset first, decoding in chunks like the cold load
does: it finds the unreadable images (dropped exactly as `load_images` drops them, so the
records and the split are the same) and, with the image cache on, writes the decoded pixels
to the same per-user cache file `load_images` uses. Only two chunks are in memory at a time.

`StreamedImages` then stands where the decoded array would: indexing it with positions gives
a view (nothing decoded), slicing it decodes those rows, and `core.pipeline.make_dataset`
turns a view into a `tf.data` pipeline whose parallel map reads each image from the cache
file (or decodes it with the same `read_image`), so the pixels are identical to the
in-memory path's.
"""

from __future__ import annotations

import contextlib
import json
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.dataset import Dataset
from core.errors import DatasetError, ImageError
from core.images import (
    ProgressFn,
    StopFn,
    _cache_folder,
    cache_writer,
    decode_many,
    iter_decoded,
    read_image,
)


@dataclass(frozen=True, eq=False)
class _Files:
    """Where each record's pixels come from: its file, and its row of the cache file."""

    paths: list[str]
    size: int
    crop: str
    fd: int | None  # images.npy of the decoded-image cache, open for reading (pread)
    offset: int  # bytes before row 0 of the cache
    rows: np.ndarray  # record index -> row of the cache

    def __post_init__(self) -> None:
        if self.fd is not None:  # closed when the last view of these images is gone
            weakref.finalize(self, os.close, self.fd)

    @property
    def row_bytes(self) -> int:
        return self.size * self.size * 3


class StreamedImages:
    """Decoded images on demand, aligned with `Dataset.records` like `ImageSet.images`.

    `images[positions]` (an integer array) is a view of those records; `images[a:b]`
    decodes rows a..b of the view into a (n, size, size, 3) uint8 array. So code written for
    arrays (`texture_statistics`, `run_batches`, `backbone_features`) reads it in chunks.
    """

    def __init__(self, files: _Files, positions: np.ndarray | None = None) -> None:
        self.files = files
        self.positions = (np.arange(len(files.paths)) if positions is None
                          else np.asarray(positions, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self), self.files.size, self.files.size, 3)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            return self.decode(self.positions[key])
        if isinstance(key, int | np.integer):
            return self.decode_one(int(self.positions[key]))
        return StreamedImages(self.files, self.positions[np.asarray(key)])

    def decode_one(self, record: int) -> np.ndarray:
        """The (size, size, 3) uint8 image of record `record` (from the cache when there)."""
        f = self.files
        if f.fd is not None:
            # pread, not a memory map: the pages stay in the OS cache, not in this process
            data = os.pread(f.fd, f.row_bytes, f.offset + int(f.rows[record]) * f.row_bytes)
            if len(data) == f.row_bytes:
                return np.frombuffer(data, np.uint8).reshape(f.size, f.size, 3)
        try:
            return read_image(f.paths[record], f.size, f.crop)
        except ImageError as exc:
            raise DatasetError(f"{exc} (it was readable when training started)") from exc

    def decode(self, records: np.ndarray) -> np.ndarray:
        """The images of `records` as one (n, size, size, 3) uint8 array."""
        if self.files.fd is not None or len(records) < 2:
            out = np.zeros((len(records), self.files.size, self.files.size, 3), np.uint8)
            for i, record in enumerate(records):
                out[i] = self.decode_one(int(record))
            return out
        images, failures = decode_many([self.files.paths[r] for r in records],
                                       self.files.size, self.files.crop)
        if failures:
            raise DatasetError(f"{next(iter(failures.values()))} (it was readable when "
                               "training started)")
        return images

    def tf_images(self, record: Any) -> Any:
        """A `tf.data` map function's body: the image of one record index tensor."""
        from core.backend import tf

        tf_ = tf()
        image = tf_.numpy_function(lambda i: self.decode_one(int(i)), [record], tf_.uint8,
                                   stateful=False)
        image.set_shape((self.files.size, self.files.size, 3))
        return image


def _cached_rows(folder: Path, ids: list[str], size: int) -> tuple[Path, int, dict] | None:
    """(images.npy, header length, failures) of a complete cache entry for `ids`, or None."""
    try:
        index = json.loads((folder / "index.json").read_text())
        if index["image_ids"] != ids:
            return None
        with open(folder / "images.npy", "rb") as fh:
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}[
                np.lib.format.read_magic(fh)]
            shape, fortran, dtype = read_header(fh)
            offset = fh.tell()
            complete = os.fstat(fh.fileno()).st_size == offset + len(ids) * size * size * 3
        if shape != (len(ids), size, size, 3) or fortran or dtype != np.uint8 or not complete:
            return None
        return folder / "images.npy", offset, dict(index["failures"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stream_images(dataset: Dataset, size: int, crop: str = "squash", *,
                  use_cache: bool = True, on_progress: ProgressFn | None = None,
                  should_stop: StopFn | None = None) -> StreamedImages:
    """Check every image of `dataset` once (filling the cache) and stream them from there.

    Unreadable images are dropped from `dataset.records` and listed in its problems, as
    `load_images` does. Without the cache (or when it cannot be written) each image is
    decoded from its file whenever it is read.
    """
    folder = _cache_folder(dataset, size, crop)
    ids = list(dataset.records["image_id"])
    paths = list(dataset.records["path"])
    found = _cached_rows(folder, ids, size) if use_cache else None
    if found is None:
        failures: dict[int, str] = {}
        with cache_writer(folder, len(ids), size, use_cache) as writer:
            for start, chunk in iter_decoded(paths, size, crop, failures,
                                             should_stop=should_stop):
                if writer:
                    writer.write(chunk)
                if on_progress:
                    on_progress(start + len(chunk), len(ids))
            by_id = {ids[i]: reason for i, reason in failures.items()}
            if writer:
                writer.finish(ids, by_id)
        if writer:
            found = _cached_rows(folder, ids, size)
    elif on_progress:
        on_progress(len(ids), len(ids))
    if found is not None:
        by_id = found[2]
    keep = np.array([i for i, image_id in enumerate(ids) if image_id not in by_id], np.int64)
    dataset.drop_images(by_id)
    fd = None
    if found is not None:
        with contextlib.suppress(OSError):  # else decoded from the files
            fd = os.open(found[0], os.O_RDONLY)
    return StreamedImages(_Files([paths[i] for i in keep], size, crop, fd,
                                 found[1] if found else 0, keep))
