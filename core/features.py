"""Frozen-backbone features, computed once per (dataset, size, crop, backbone) and cached.

With a frozen backbone and no augmentation, every epoch would push the same images through
the same backbone. Instead the backbone runs once, its features are cached on disk, and only
the small head trains on them: the same model, many times faster per epoch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core import paths
from core.backend import keras
from core.errors import CancelledError
from core.models import FEATURES

if TYPE_CHECKING:
    from core.stream import StreamedImages  # read batch by batch, like an array

CACHE_VERSION = 1


def split_transfer(model: Any) -> tuple[Any, Any]:
    """(feature extractor, head) sharing the layers of a transfer `model`.

    Training the head trains the full model's head layers: they are the same objects.
    """
    k = keras()
    extractor = k.Model(model.input, model.get_layer(FEATURES).output, name="extractor")
    after = model.layers[model.layers.index(model.get_layer(FEATURES)) + 1:]
    inputs = k.Input(tuple(extractor.output.shape[1:]), name="features_in")
    x = inputs
    for layer in after:
        x = layer(x)
    return extractor, k.Model(inputs, x, name="head")


def cache_key(fingerprint: str, size: int, crop: str, model_name: str,
              weights: str | None) -> str:
    """A cache key naming the dataset, preprocessing and the exact backbone weights."""
    origin = str(weights)
    if weights not in (None, "imagenet", "none") and Path(str(weights)).is_file():
        stat = Path(str(weights)).stat()
        origin = f"{Path(str(weights)).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    digest = hashlib.sha1(f"{fingerprint}|{size}|{crop}|{model_name}|{origin}".encode())
    return f"v{CACHE_VERSION}-{digest.hexdigest()[:20]}"


def backbone_features(extractor: Any, images: np.ndarray | StreamedImages, key: str | None, *,
                      batch_size: int = 32,
                      on_progress: Callable[[int, int], None] | None = None,
                      should_stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, bool]:
    """Features of every image (float16), from the cache when `key` was computed before.

    Returns (features, from_cache). `key=None` disables the cache (random weights).
    """
    target = paths.cache_dir() / "features" / f"{key}.npy" if key else None
    if target is not None and target.is_file():
        try:
            cached = np.load(target)
            if len(cached) == len(images):
                if on_progress:
                    on_progress(len(images), len(images))
                return cached, True
        except (OSError, ValueError):
            pass  # rebuilt below
    parts = []
    for start in range(0, len(images), batch_size):
        if should_stop and should_stop():
            raise CancelledError("feature extraction was stopped")
        batch = images[start:start + batch_size].astype(np.float32)
        parts.append(np.asarray(extractor(batch, training=False)).astype(np.float16))
        if on_progress:
            on_progress(min(len(images), start + batch_size), len(images))
    features = np.concatenate(parts) if parts else np.zeros((0,), np.float16)
    if target is not None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with paths.atomic_path(target) as tmp, open(tmp, "wb") as fh:
                np.save(fh, features)
        except OSError:
            pass  # the cache is an optimisation
    return features, False
