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
from typing import TYPE_CHECKING, Any

import numpy as np

from core import paths
from core.backend import keras, tf
from core.checkpoints import (
    BEST_WEIGHTS,
    CHECKPOINT,
    BatchProgress,
    EpochResult,
    RunState,
    read_history,
    read_state,
    remove_checkpoint,
    run_callback,
)
from core.dataset import load_dataset
from core.errors import DatasetError
from core.features import backbone_features, cache_key, split_transfer
from core.images import CROP_POLICIES, load_images
from core.keras_metrics import balanced_accuracy, metric_class
from core.metrics import balanced_accuracy_ci, compute_metrics, lesions_known, predictions_table
from core.model_io import ModelInfo, apply_recipe, save_model
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
from core.trust import Part, TrustFit, fit_trust, score_inputs

if TYPE_CHECKING:
    import pandas as pd

MONITORS = ("val_loss", "val_balanced_accuracy")


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
    weights: str | None = "imagenet"  # transfer models: "imagenet", a file, or "none"
    fine_tune: int = 0  # transfer models: how many of the backbone's last layers train
    augment: bool = False  # random flips, rotations, zoom, brightness and contrast
    label_smoothing: float = 0.0
    lr_schedule: str = "constant"  # or "cosine" (decays to 0 over the run)
    early_stopping: int = 0  # stop after this many epochs without a better one (0: off)
    monitor: str = "val_loss"  # which epoch is best: "val_loss" or "val_balanced_accuracy"
    cache_features: bool = True  # frozen transfer models: run the backbone once, not per epoch
    init_from: str | None = None  # start from this .keras model's weights (same architecture)
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
        if self.lr_schedule not in ("constant", "cosine"):
            raise DatasetError("learning-rate schedule must be constant or cosine")
        if not 0 <= self.label_smoothing < 1:
            raise DatasetError("label smoothing must be between 0 and 1")
        if self.monitor not in MONITORS:
            raise DatasetError(f"unknown monitor {self.monitor!r}; choose from "
                               f"{', '.join(MONITORS)}")
        if self.fine_tune < 0 or self.early_stopping < 0:
            raise DatasetError("fine-tune layers and early-stopping patience cannot be negative")

    @property
    def size(self) -> int:
        """The image size in pixels this run uses."""
        return self.image_size or MODELS[self.model].image_size


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


def _make_dataset(images: np.ndarray, labels: np.ndarray, n_classes: int, batch_size: int,
                  shuffle_seed: int | None, augment: bool = False) -> Any:
    """A batched, prefetched `tf.data` pipeline; augmentation runs in it, not in the model."""
    tf_ = tf()
    onehot = np.eye(n_classes, dtype=np.float32)[labels]
    ds = tf_.data.Dataset.from_tensor_slices((images, onehot))  # images or cached features
    if shuffle_seed is not None:
        ds = ds.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
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


def uses_feature_cache(config: TrainConfig) -> bool:
    """Frozen transfer models without augmentation train their head on cached features."""
    return (config.cache_features and MODELS[config.model].uses_imagenet
            and config.fine_tune == 0 and not config.augment)


def _load_initial_weights(model: Any, source: str) -> None:
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


def _optimizer(config: TrainConfig, n_train: int) -> Any:
    """Adam with a constant or cosine-decaying learning rate."""
    rate: Any = config.learning_rate
    if config.lr_schedule == "cosine":
        steps = config.epochs * math.ceil(n_train / config.batch_size)
        rate = keras().optimizers.schedules.CosineDecay(config.learning_rate, steps)
    return keras().optimizers.Adam(rate)


@dataclass
class _Split:
    table: pd.DataFrame  # image_id, lesion_id, dx, subset (the run's split.csv)
    train: np.ndarray  # positions into the dataset's records (with repeats when resampled)
    val: np.ndarray
    test: np.ndarray


def _split(config: TrainConfig, records: pd.DataFrame, labels: np.ndarray,
           status: Callable[[str], None]) -> _Split:
    """Deterministic (seeded) split and training-part balancing as `config` says."""
    mode, per_class = parse_balance(config.balance)
    if config.split == "lesion":
        subset = split_lesion(records, val_fraction=config.val_fraction,
                              test_fraction=config.test_fraction, seed=config.seed).to_numpy()
        table = records[["image_id", "lesion_id", "dx"]].assign(subset=subset)
        train_pos = np.flatnonzero(subset == "train")
        if mode == "resample":
            train_pos = resample_training(train_pos, labels, per_class, config.seed)
        return _Split(table, train_pos, np.flatnonzero(subset == "val"),
                      np.flatnonzero(subset == "test"))
    status(f"warning: {LEAKY_WARNING}")
    balanced, leaky_subset = split_seed_leaky(records, per_class=per_class or 500,
                                              seed=config.seed)
    table = balanced[["image_id", "lesion_id", "dx"]].assign(subset=leaky_subset.to_numpy())
    positions = balanced.index.to_numpy()
    val = positions[leaky_subset.to_numpy() == "val"]
    return _Split(table, positions[leaky_subset.to_numpy() == "train"], val, val)


def _check_classes(classes: list[str], labels: np.ndarray, split: _Split) -> None:
    present = np.unique(labels[split.train])
    if len(present) < 2:
        raise DatasetError("training needs images of at least 2 classes; the training part "
                           f"has only {', '.join(classes[i] for i in present) or 'none'}")


def _evaluate_test(fit_model: Any, test: Part, rows: pd.DataFrame, classes: list[str],
                   trust: TrustFit) -> tuple[dict[str, Any], pd.DataFrame]:
    """Test-part metrics and predictions with the fitted temperature and gate applied."""
    raw, features = score_inputs(fit_model, test.inputs)
    proba = apply_recipe(raw, trust.temperature.used)
    y_test = test.labels
    scores = trust.domain.score(features, test.images) if len(features) else np.zeros(0)
    accepted = trust.domain.in_domain(scores)
    metrics = compute_metrics(y_test, proba, classes)
    by_lesion = lesions_known(rows["image_id"].to_numpy(), rows["lesion_id"].to_numpy())
    metrics.update(
        balanced_accuracy_ci95=list(balanced_accuracy_ci(
            y_test, proba.argmax(axis=1),
            groups=rows["lesion_id"].to_numpy() if by_lesion else None)),
        ci_unit="lesion" if by_lesion else "image",
        out_of_domain=int((~accepted).sum()),
        domain={**trust.domain.params(), "val_rejected": trust.val_rejected},
        calibration={"temperature_fitted": trust.temperature.fitted,
                     "temperature": trust.temperature.used,
                     "val_ece_before": trust.temperature.ece_before,
                     "val_ece_after": trust.temperature.ece_after})
    table = predictions_table(list(rows["image_id"]), list(rows["path"]), y_test, proba,
                              classes, scores, accepted)
    return metrics, table


def resume(run_dir: str | Path, **hooks: Any) -> TrainResult:
    """Continue a run that was stopped or killed from its last completed epoch.

    Takes the same hooks as `train`. The dataset must be unchanged (the split is recomputed
    from the saved seed and compared with the run's split.csv).
    """
    run_dir = Path(run_dir)
    try:
        config = TrainConfig(**json.loads((run_dir / "config.json").read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise DatasetError(f"{run_dir} is not a resumable run: config.json unreadable") from exc
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file() and not json.loads(metrics_file.read_text()).get("stopped"):
        raise DatasetError(f"run {run_dir.name} has already finished; nothing to resume")
    if not (run_dir / CHECKPOINT).is_file():
        raise DatasetError(f"run {run_dir.name} has no checkpoint (it ended before its first "
                           "epoch completed); start a new run instead")
    return train(config, out_dir=run_dir, resume_run=True, **hooks)


def train(config: TrainConfig, *, out_dir: str | Path | None = None, resume_run: bool = False,
          on_epoch: Callable[[EpochResult], None] | None = None,
          on_batch: Callable[[BatchProgress], None] | None = None,
          should_stop: Callable[[], bool] | None = None,
          on_status: Callable[[str], None] | None = None,
          on_load_progress: Callable[[int, int], None] | None = None) -> TrainResult:
    """Run one training as `config` says and write its run folder; see the module docstring.

    Hooks are called from the thread that runs `train`. When `should_stop()` turns true the
    run ends within one batch, keeps the best epoch so far, and is still evaluated and saved.
    Every completed epoch is checkpointed, so a killed run can be continued with `resume`.
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
    split = _split(config, records, labels, status)
    _check_classes(classes, labels, split)
    mode, _ = parse_balance(config.balance)
    weights = class_weights(labels[split.train], len(classes)) if mode == "class-weights" \
        else None

    run_dir = Path(out_dir) if out_dir else new_run_dir(config.model)
    run_dir.mkdir(parents=True, exist_ok=True)
    keras().utils.set_random_seed(config.seed)
    feature_mode = uses_feature_cache(config)
    metric_class()  # registered before a checkpoint that names it is loaded
    if resume_run:
        import pandas as pd

        saved = pd.read_csv(run_dir / "split.csv", dtype=str, keep_default_na=False)
        if not saved["image_id"].equals(split.table["image_id"].reset_index(drop=True)):
            raise DatasetError(f"the dataset in {config.data_dir} changed since run "
                               f"{run_dir.name} started; it cannot be resumed")
        state = read_state(run_dir)
        history = read_history(run_dir, state.epochs_completed)
        status(f"resuming after epoch {state.epochs_completed}")
    else:
        paths.write_text_atomic(run_dir / "config.json",
                                json.dumps(asdict(config), indent=2, default=str))
        with paths.atomic_path(run_dir / "split.csv") as tmp:
            split.table.to_csv(tmp, index=False)
        state, history = RunState(), []
    inputs = images
    if resume_run and not feature_mode:
        model = fit_model = keras().saving.load_model(run_dir / CHECKPOINT, safe_mode=True)
    else:
        status(f"building {MODELS[config.model].title}")
        weights_arg = None if config.weights == "none" else config.weights
        model = fit_model = build_model(config.model, config.size, len(classes),
                                        weights=weights_arg, fine_tune=config.fine_tune)
        if config.init_from and not resume_run:
            _load_initial_weights(model, config.init_from)
            status(f"starting from the weights of {config.init_from}")
        if feature_mode:
            extractor, fit_model = split_transfer(model)
            status("computing the frozen backbone's features once (augmentation is off in "
                   "this mode)")
            key = None if weights_arg is None else cache_key(
                dataset.fingerprint(), config.size, config.crop, config.model, weights_arg)
            inputs, cached = backbone_features(extractor, images, key,
                                               on_progress=on_load_progress, should_stop=stop)
            status("backbone features " + ("read from the cache" if cached else "computed"))
        if resume_run:  # feature mode: continue the saved head, optimizer state included
            fit_model = keras().saving.load_model(run_dir / CHECKPOINT, safe_mode=True)
        else:
            fit_model.compile(optimizer=_optimizer(config, len(split.train)),
                              loss=keras().losses.CategoricalCrossentropy(
                                  label_smoothing=config.label_smoothing),
                              metrics=["accuracy", balanced_accuracy(len(classes))])
    train_ds = _make_dataset(inputs[split.train], labels[split.train], len(classes),
                             config.batch_size, config.seed + state.epochs_completed,
                             config.augment and not feature_mode)
    val_ds = _make_dataset(inputs[split.val], labels[split.val], len(classes),
                           config.batch_size, None)
    batches = math.ceil(len(split.train) / config.batch_size)
    callback = run_callback(run_dir, config.epochs, batches, state, history, on_epoch,
                            on_batch, stop, patience=config.early_stopping,
                            monitor=config.monitor)
    status(f"training on {len(split.train)} images, validating on {len(split.val)}")
    if not stop() and state.epochs_completed < config.epochs:
        fit_model.fit(train_ds, validation_data=val_ds if len(split.val) else None,
                      epochs=config.epochs, initial_epoch=state.epochs_completed,
                      class_weight=weights, verbose=0, callbacks=[callback],
                      shuffle=False)  # the tf.data pipeline shuffles
    if (run_dir / BEST_WEIGHTS).is_file():
        fit_model.load_weights(run_dir / BEST_WEIGHTS)
    if feature_mode and resume_run:  # a resumed head is a separate model: copy it into place
        split_transfer(model)[1].set_weights(fit_model.get_weights())

    train_unique = np.unique(split.train)
    trust = fit_trust(fit_model, Part(inputs[train_unique], images[train_unique],
                                      labels[train_unique]),
                      Part(inputs[split.val], images[split.val], labels[split.val]),
                      status=status)
    status(f"evaluating on {len(split.test)} test images")
    test = Part(inputs[split.test], images[split.test], labels[split.test])
    metrics, table = _evaluate_test(fit_model, test, records.iloc[split.test], classes, trust)
    leaky = config.split != "lesion"
    metrics.update(split=config.split, evaluated_on="val" if leaky else "test",
                   leaky=leaky, best_epoch=state.best_epoch,
                   epochs_completed=len(history), stopped=callback.stopped or stop(),
                   early_stopped=callback.early_stopped, feature_cache=feature_mode,
                   train_images=int(len(split.train)), val_images=int(len(split.val)),
                   seconds=round(time.time() - started, 1), problems=len(dataset.problems))
    info = ModelInfo(classes=classes, image_size=config.size, crop=config.crop,
                     architecture=config.model,
                     trained_on={"data": str(dataset.root), "layout": dataset.layout,
                                 "split": config.split, "seed": config.seed,
                                 "images": int(len(records)), "balance": config.balance},
                     metrics={k: metrics[k] for k in ("accuracy", "balanced_accuracy",
                                                      "macro_auc", "melanoma_recall", "ece")},
                     temperature=trust.temperature.used)
    save_model(model, run_dir / "model.keras", info, trust.domain,
               records["image_id"].iloc[train_unique])
    with paths.atomic_path(run_dir / "predictions.csv") as tmp:
        table.to_csv(tmp, index=False)
    paths.write_text_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    if not metrics["stopped"]:
        remove_checkpoint(run_dir)  # a stopped run keeps it, so it can be resumed later
    status(f"saved run to {run_dir}")
    return TrainResult(run_dir, metrics, history, bool(metrics["stopped"]), state.best_epoch)
