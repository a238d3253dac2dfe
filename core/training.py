"""Train a model end to end: load, split, balance, fit, evaluate on the test part, save.

`train()` knows nothing about any GUI: callers pass plain hooks and a `should_stop` poll.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import paths
from core.backend import keras, tf
from core.dataset import load_dataset
from core.errors import DatasetError
from core.images import CROP_POLICIES, load_images
from core.metrics import compute_metrics, predictions_table
from core.model_io import ModelInfo, predict_probabilities, save_model
from core.models import MODELS, build_model
from core.splits import (
    LEAKY_WARNING,
    SPLITS,
    class_weights,
    parse_balance,
    resample_training,
    split_lesion,
    split_seed_leaky,
)


@dataclass
class TrainConfig:
    """Everything that defines a training run (the study's values are the defaults)."""

    data_dir: str
    model: str = "cnn"
    image_size: int | None = None  # None: the model's default (32 px, 150 px for VGG16)
    epochs: int = 50
    batch_size: int = 32
    learning_rate: float = 1e-3
    balance: str = "resample:500"
    split: str = "lesion"
    seed: int = 42
    crop: str = "squash"
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    weights: str | None = "imagenet"
    augment: bool = False  # random flips and small rotations of training images
    use_cache: bool = True

    def validate(self) -> None:
        """Raise `DatasetError` with a clear message for any impossible setting."""
        if self.model not in MODELS:
            raise DatasetError(f"unknown model {self.model!r}; choose from {', '.join(MODELS)}")
        if self.split not in SPLITS:
            raise DatasetError(f"unknown split {self.split!r}; choose from {', '.join(SPLITS)}")
        if self.crop not in CROP_POLICIES:
            raise DatasetError(f"unknown crop {self.crop!r}; choose from {CROP_POLICIES}")
        parse_balance(self.balance)
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise DatasetError(f"{name.replace('_', ' ')} must be at least 1")
        if self.image_size is not None and not 8 <= self.image_size <= 1024:
            raise DatasetError("image size must be between 8 and 1024 px")
        if not 0 < self.learning_rate < 1:
            raise DatasetError("learning rate must be between 0 and 1")

    @property
    def size(self) -> int:
        """The image size in pixels this run uses."""
        return self.image_size or MODELS[self.model].image_size


@dataclass
class EpochResult:
    """Sent after each completed epoch (1-based `epoch`)."""

    epoch: int
    epochs: int
    logs: dict[str, float]
    seconds: float


@dataclass
class BatchProgress:
    """Sent after each training batch (1-based `batch`)."""

    epoch: int
    epochs: int
    batch: int
    batches: int


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced."""

    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    stopped: bool = False
    best_epoch: int | None = None


def new_run_dir(model: str) -> Path:
    """A fresh, uniquely named folder under the per-user runs folder."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = paths.runs_dir() / f"{stamp}-{model}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _hooks_callback(epochs: int, batches: int, on_epoch: Callable[[EpochResult], None] | None,
                    on_batch: Callable[[BatchProgress], None] | None,
                    should_stop: Callable[[], bool], history: list[dict[str, float]],
                    write_history: Callable[[], None]) -> Any:
    """A Keras callback that forwards progress and stops within one batch."""

    class Hooks(keras().callbacks.Callback):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.stopped_mid_epoch = False
            self.best_loss = math.inf
            self.best_weights: list[np.ndarray] | None = None
            self.best_epoch: int | None = None
            self._epoch = 0
            self._started = 0.0

        def _poll(self) -> None:
            if should_stop():
                self.stopped_mid_epoch = True
                self.model.stop_training = True
                self.model.stop_evaluating = True

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._epoch, self._started = epoch + 1, time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if on_batch:
                on_batch(BatchProgress(self._epoch, epochs, batch + 1, batches))
            self._poll()

        def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self._poll()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if self.stopped_mid_epoch:
                return  # a partial epoch is neither recorded nor kept
            row = {"epoch": float(self._epoch), **{k: float(v) for k, v in (logs or {}).items()}}
            history.append(row)
            write_history()
            loss = row.get("val_loss", row.get("loss", math.inf))
            if loss < self.best_loss:
                self.best_loss, self.best_epoch = loss, self._epoch
                self.best_weights = self.model.get_weights()
            if on_epoch:
                on_epoch(EpochResult(self._epoch, epochs, row, time.perf_counter() - self._started))
            self._poll()

    return Hooks()


def _make_dataset(images: np.ndarray, labels: np.ndarray, n_classes: int, batch_size: int,
                  shuffle_seed: int | None, augment: bool = False) -> Any:
    """A batched, prefetched `tf.data` pipeline; augmentation runs in it, not in the model."""
    tf_ = tf()
    onehot = np.eye(n_classes, dtype=np.float32)[labels]
    ds = tf_.data.Dataset.from_tensor_slices((images, onehot))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda x, y: (tf_.cast(x, "float32"), y))
    if augment:
        layers = keras().layers
        augmenter = keras().Sequential([layers.RandomFlip("horizontal_and_vertical"),
                                        layers.RandomRotation(0.1, fill_mode="reflect")])
        ds = ds.map(lambda x, y: (augmenter(x, training=True), y),
                    num_parallel_calls=tf_.data.AUTOTUNE)
    return ds.prefetch(tf_.data.AUTOTUNE)


def train(config: TrainConfig, *, out_dir: str | Path | None = None,
          on_epoch: Callable[[EpochResult], None] | None = None,
          on_batch: Callable[[BatchProgress], None] | None = None,
          should_stop: Callable[[], bool] | None = None,
          on_status: Callable[[str], None] | None = None,
          on_load_progress: Callable[[int, int], None] | None = None) -> TrainResult:
    """Run one training as `config` says and write its run folder; see the module docstring.

    Hooks are called from the thread that runs `train`. When `should_stop()` turns true the
    run ends within one batch, keeps the best epoch so far, and is still evaluated and saved.
    """
    config.validate()
    stop = should_stop or (lambda: False)
    status = on_status or (lambda _msg: None)
    started = time.time()
    status("reading dataset")
    dataset = load_dataset(config.data_dir)
    status(f"decoding {len(dataset.records)} images at {config.size} px")
    images = load_images(dataset, config.size, config.crop, use_cache=config.use_cache,
                         on_progress=on_load_progress, should_stop=stop).images
    records, classes = dataset.records, dataset.classes
    labels = records["dx"].map({c: i for i, c in enumerate(classes)}).to_numpy()

    mode, per_class = parse_balance(config.balance)
    if config.split == "lesion":
        subset = split_lesion(records, val_fraction=config.val_fraction,
                              test_fraction=config.test_fraction, seed=config.seed)
        split_table = records[["image_id", "lesion_id", "dx"]].assign(subset=subset.to_numpy())
        train_pos = np.flatnonzero(subset.to_numpy() == "train")
        val_pos = np.flatnonzero(subset.to_numpy() == "val")
        test_pos = np.flatnonzero(subset.to_numpy() == "test")
        if mode == "resample":
            train_pos = resample_training(train_pos, labels, per_class, config.seed)
    else:
        status(f"warning: {LEAKY_WARNING}")
        balanced, subset = split_seed_leaky(records, per_class=per_class or 500, seed=config.seed)
        split_table = balanced[["image_id", "lesion_id", "dx"]].assign(subset=subset.to_numpy())
        positions = balanced.index.to_numpy()
        train_pos = positions[subset.to_numpy() == "train"]
        val_pos = test_pos = positions[subset.to_numpy() == "val"]
    weights = class_weights(labels[train_pos], len(classes)) if mode == "class-weights" else None

    run_dir = Path(out_dir) if out_dir else new_run_dir(config.model)
    run_dir.mkdir(parents=True, exist_ok=True)
    paths.write_text_atomic(run_dir / "config.json",
                            json.dumps(asdict(config), indent=2, default=str))
    with paths.atomic_path(run_dir / "split.csv") as tmp:
        split_table.to_csv(tmp, index=False)
    history: list[dict[str, float]] = []

    def write_history() -> None:
        with paths.atomic_path(run_dir / "history.csv") as tmp:
            pd.DataFrame(history).to_csv(tmp, index=False)

    keras().utils.set_random_seed(config.seed)
    status(f"building {MODELS[config.model].title}")
    model = build_model(config.model, config.size, len(classes), weights=config.weights)
    model.compile(optimizer=keras().optimizers.Adam(config.learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    train_ds = _make_dataset(images[train_pos], labels[train_pos], len(classes),
                             config.batch_size, config.seed, config.augment)
    val_ds = _make_dataset(images[val_pos], labels[val_pos], len(classes), config.batch_size,
                           None)
    batches = math.ceil(len(train_pos) / config.batch_size)
    hooks = _hooks_callback(config.epochs, batches, on_epoch, on_batch, stop, history,
                            write_history)
    status(f"training on {len(train_pos)} images, validating on {len(val_pos)}")
    if not stop():
        model.fit(train_ds, validation_data=val_ds if len(val_pos) else None,
                  epochs=config.epochs, class_weight=weights, verbose=0, callbacks=[hooks],
                  shuffle=False)  # the tf.data pipeline shuffles
    if hooks.best_weights is not None:
        model.set_weights(hooks.best_weights)

    status(f"evaluating on {len(test_pos)} test images")
    proba = predict_probabilities(model, images[test_pos])
    metrics = compute_metrics(labels[test_pos], proba, classes)
    test_rows = records.iloc[test_pos]
    table = predictions_table(list(test_rows["image_id"]), list(test_rows["path"]),
                              labels[test_pos], proba, classes)
    leaky = config.split != "lesion"
    metrics.update(split=config.split, evaluated_on="val" if leaky else "test",
                   leaky=leaky, best_epoch=hooks.best_epoch,
                   epochs_completed=len(history), stopped=hooks.stopped_mid_epoch or stop(),
                   train_images=int(len(train_pos)), val_images=int(len(val_pos)),
                   seconds=round(time.time() - started, 1), problems=len(dataset.problems))
    info = ModelInfo(classes=classes, image_size=config.size, crop=config.crop,
                     architecture=config.model,
                     trained_on={"data": str(dataset.root), "layout": dataset.layout,
                                 "split": config.split, "seed": config.seed,
                                 "images": int(len(records)), "balance": config.balance},
                     metrics={k: metrics[k] for k in ("accuracy", "balanced_accuracy",
                                                      "macro_auc", "melanoma_recall")})
    save_model(model, run_dir / "model.keras", info)
    with paths.atomic_path(run_dir / "predictions.csv") as tmp:
        table.to_csv(tmp, index=False)
    paths.write_text_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    status(f"saved run to {run_dir}")
    return TrainResult(run_dir, metrics, history, bool(metrics["stopped"]), hooks.best_epoch)
