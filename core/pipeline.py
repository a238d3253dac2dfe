"""The pieces a training run is assembled from: split, tf.data pipeline, optimizer.

Pure functions of a `TrainConfig` and arrays; `core.training` runs them in phases.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from core.backend import keras, tf
from core.config import TrainConfig
from core.errors import DatasetError
from core.splits import (
    LEAKY_WARNING,
    parse_balance,
    resample_training,
    split_fold,
    split_lesion,
    split_seed_leaky,
)
from core.stream import StreamedImages

if TYPE_CHECKING:
    import pandas as pd


def make_dataset(images: np.ndarray | StreamedImages, labels: np.ndarray, n_classes: int,
                 batch_size: int, shuffle_seed: int | None, augment: bool = False) -> Any:
    """A batched, prefetched `tf.data` pipeline; augmentation runs in it, not in the model.

    `images` is an array (images or cached features) or a `StreamedImages` view: then the
    record indices are what is shuffled, and a parallel map reads each image, so both give
    the same images in the same order for the same seed.
    """
    tf_ = tf()
    onehot = np.eye(n_classes, dtype=np.float32)[labels]
    elements = images.positions if isinstance(images, StreamedImages) else images
    ds = tf_.data.Dataset.from_tensor_slices((elements, onehot))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    if isinstance(images, StreamedImages):
        ds = ds.map(lambda i, y: (images.tf_images(i), y), num_parallel_calls=tf_.data.AUTOTUNE)
    ds = ds.batch(batch_size).map(lambda x, y: (tf_.cast(x, "float32"), y))
    if augment:
        layers = keras().layers
        augmenter = keras().Sequential([
            layers.RandomFlip("horizontal_and_vertical"),
            layers.RandomRotation(0.1, fill_mode="reflect"),
            layers.RandomZoom(0.1, fill_mode="reflect"),
            layers.RandomBrightness(0.1, value_range=(0, 255)),
            layers.RandomContrast(0.1, value_range=(0, 255)),
        ])
        ds = ds.map(lambda x, y: (augmenter(x, training=True), y),
                    num_parallel_calls=tf_.data.AUTOTUNE)
    return ds.prefetch(tf_.data.AUTOTUNE)


def load_initial_weights(model: Any, source: str) -> None:
    """Copy weights from a saved model of the same architecture (e.g. a frozen-stage run)."""
    try:
        weights = keras().saving.load_model(source, compile=False, safe_mode=True).get_weights()
    except Exception as exc:  # missing, unsafe or damaged file
        raise DatasetError(f"cannot start from {source}: {str(exc).splitlines()[0][:200]}"
                           ) from exc
    own = model.get_weights()
    shapes_differ = any(a.shape != b.shape for a, b in zip(weights, own, strict=False))
    if len(weights) != len(own) or shapes_differ:
        raise DatasetError(f"cannot start from {source}: it is a different model (architecture, "
                           "image size or classes differ)")
    model.set_weights(weights)


def optimizer(config: TrainConfig, n_train: int) -> Any:
    """Adam with a constant or cosine-decaying learning rate."""
    rate: Any = config.learning_rate
    if config.lr_schedule == "cosine":
        steps = config.epochs * math.ceil(n_train / config.batch_size)
        rate = keras().optimizers.schedules.CosineDecay(config.learning_rate, steps)
    return keras().optimizers.Adam(rate)


@dataclass
class Split:
    table: pd.DataFrame  # image_id, lesion_id, dx, subset (the run's split.csv)
    train: np.ndarray  # positions into the dataset's records (with repeats when resampled)
    val: np.ndarray
    test: np.ndarray


def make_split(config: TrainConfig, records: pd.DataFrame, labels: np.ndarray,
           status: Callable[[str], None]) -> Split:
    """Deterministic (seeded) split and training-part balancing as `config` says."""
    mode, per_class = parse_balance(config.balance)
    if config.split == "lesion":
        subset = (split_fold(records, config.folds, config.fold, seed=config.seed,
                             val_fraction=config.val_fraction) if config.folds > 1 else
                  split_lesion(records, val_fraction=config.val_fraction,
                               test_fraction=config.test_fraction, seed=config.seed)).to_numpy()
        table = records[["image_id", "lesion_id", "dx"]].assign(subset=subset)
        train_pos = np.flatnonzero(subset == "train")
        if mode == "resample":
            train_pos = resample_training(train_pos, labels, per_class, config.seed)
        return Split(table, train_pos, np.flatnonzero(subset == "val"),
                      np.flatnonzero(subset == "test"))
    status(f"warning: {LEAKY_WARNING}")
    balanced, leaky_subset = split_seed_leaky(records, per_class=per_class or 500,
                                              seed=config.seed)
    table = balanced[["image_id", "lesion_id", "dx"]].assign(subset=leaky_subset.to_numpy())
    positions = balanced.index.to_numpy()
    val = positions[leaky_subset.to_numpy() == "val"]
    return Split(table, positions[leaky_subset.to_numpy() == "train"], val, val)


def check_classes(classes: list[str], labels: np.ndarray, split: Split) -> None:
    present = np.unique(labels[split.train])
    if len(present) < 2:
        raise DatasetError("training needs images of at least 2 classes; the training part "
                           f"has only {', '.join(classes[i] for i in present) or 'none'}")
