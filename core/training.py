"""Train a model end to end, in named phases: prepare the data, start or continue the run
folder, build or restore the model, fit, make it trustworthy, evaluate and save.

`train()` knows nothing about any GUI: callers pass plain hooks and a `should_stop` poll.
Resuming a run is a way of starting it (`_continue_run`), not a flag threaded through.
Every strategy (`core.distribute`) trains with the same loop (`core.loop`); under a strategy
or mixed precision the model that trains is a replica-side copy, and its weights go back into
a plain float32 model that is evaluated and saved.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.backend import keras, release_memory, tf
from core.checkpoints import BatchProgress, EpochResult, run_callback
from core.config import MONITORS, TrainConfig
from core.dataset import Dataset, load_dataset
from core.distribute import Distribution, make_distribution
from core.errors import DatasetError, TrainingError
from core.features import backbone_features, cache_key, split_transfer
from core.images import load_images
from core.keras_metrics import balanced_accuracy, metric_class
from core.loop import fit_loop, whole_batches, with_class_weights
from core.model_io import LoadedModel, ModelInfo, save_model
from core.models import MODELS, build_model
from core.pipeline import (
    Split,
    check_classes,
    load_initial_weights,
    make_dataset,
    make_split,
    optimizer,
)
from core.runs import RunFolder, RunState, new_run_dir
from core.splits import class_weights, parse_balance
from core.stream import StreamedImages, stream_images
from core.tensorboard_log import RunBoard
from core.trust import Part, evaluate_with_trust, fit_trust
from core.twin import ensure_twin, litert_available

__all__ = ["MONITORS", "BatchProgress", "EpochResult", "TrainConfig", "TrainResult", "resume",
           "train"]


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced."""

    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    stopped: bool = False
    best_epoch: int | None = None
    chief: bool = True  # False: a multi-worker worker that wrote no run folder


@dataclass
class _Hooks:
    on_epoch: Callable[[EpochResult], None] | None
    on_batch: Callable[[BatchProgress], None] | None
    stop: Callable[[], bool]
    status: Callable[[str], None]
    load_progress: Callable[[int, int], None] | None


@dataclass
class _Data:
    """The decoded dataset and its split, ready to train on."""

    dataset: Dataset
    images: np.ndarray | StreamedImages  # streamed: read from disk when used
    labels: np.ndarray
    split: Split

    @property
    def classes(self) -> list[str]:
        return self.dataset.classes


@dataclass
class _Models:
    """The full model (saved at the end) and the one `fit` trains (the head, with cached
    features), with what `fit_model` reads."""

    model: Any
    fit_model: Any
    inputs: np.ndarray | StreamedImages
    feature_mode: bool
    separate: bool = False  # fit_model is not (part of) model: its weights are copied back


# ----- phases ------------------------------------------------------------------------------
def _prepare_data(config: TrainConfig, hooks: _Hooks) -> _Data:
    """Read, decode and split the dataset (deterministic for the config's seed)."""
    hooks.status("reading dataset")
    dataset = load_dataset(config.data_dir)
    images: np.ndarray | StreamedImages
    if config.stream:
        hooks.status(f"checking {len(dataset.records)} images at {config.size} px for "
                     "streaming")
        images = stream_images(dataset, config.size, config.crop, use_cache=config.use_cache,
                               on_progress=hooks.load_progress, should_stop=hooks.stop)
    else:
        hooks.status(f"decoding {len(dataset.records)} images at {config.size} px")
        images = load_images(dataset, config.size, config.crop, use_cache=config.use_cache,
                             on_progress=hooks.load_progress, should_stop=hooks.stop).images
    labels = dataset.records["dx"].map({c: i for i, c in enumerate(dataset.classes)}).to_numpy()
    split = make_split(config, dataset.records, labels, hooks.status)
    check_classes(dataset.classes, labels, split)
    return _Data(dataset, images, labels, split)


def _start_run(run: RunFolder, config: TrainConfig, data: _Data, replicas: int) -> RunState:
    """A new run: write its config and split."""
    run.write_config(config, replicas)
    run.write_split(data.split.table)
    return RunState()


def _continue_run(run: RunFolder, config: TrainConfig, data: _Data,
                  hooks: _Hooks) -> RunState:
    """A resumed run: the dataset must be unchanged; its state says where to go on."""
    saved = run.read_split()
    if not saved["image_id"].equals(data.split.table["image_id"].reset_index(drop=True)):
        raise DatasetError(f"the dataset in {config.data_dir} changed since run {run.name} "
                           "started; it cannot be resumed")
    state = run.read_state()
    hooks.status(f"resuming after epoch {state.epochs_completed}")
    return state


def _replica_model(config: TrainConfig, n_classes: int, feature_mode: bool) -> Any:
    """The model (or head) that trains, built in the strategy's scope and dtype policy; its
    weights are then set from the plain model's."""
    model = build_model(config.model, config.size, n_classes, weights=None,
                        fine_tune=config.fine_tune)
    return split_transfer(model)[1] if feature_mode else model


def _build_models(config: TrainConfig, data: _Data, run: RunFolder, resuming: bool,
                  hooks: _Hooks, dist: Distribution) -> _Models:
    """Build (or restore from the checkpoint) the model and what `fit` trains."""
    feature_mode = bool(config.cache_features)
    metric_class()  # registered before a checkpoint that names it is loaded
    checkpoint = run.file(run.CHECKPOINT)
    if resuming and not feature_mode and dist.plain:
        model = keras().saving.load_model(checkpoint, safe_mode=True)
        return _Models(model, model, data.images, False)
    hooks.status(f"building {MODELS[config.model].title}")
    restored = resuming and not feature_mode  # every weight comes from the checkpoint
    weights = None if config.weights == "none" or restored else config.weights
    model = fit_model = build_model(config.model, config.size, len(data.classes),
                                    weights=weights, fine_tune=config.fine_tune)
    if config.init_from and not resuming:
        load_initial_weights(model, config.init_from)
        hooks.status(f"starting from the weights of {config.init_from}")
    inputs = data.images
    if feature_mode:
        extractor, fit_model = split_transfer(model)
        hooks.status("computing the frozen backbone's features once")
        key = None if weights is None else cache_key(
            data.dataset.fingerprint(), config.size, config.crop, config.model, weights)
        inputs, cached = backbone_features(extractor, data.images, key,
                                           on_progress=hooks.load_progress,
                                           should_stop=hooks.stop)
        hooks.status("backbone features " + ("read from the cache" if cached else "computed"))
    plain = fit_model
    with dist.scope():
        if resuming:  # continue the saved model or head, optimizer state included
            fit_model = keras().saving.load_model(checkpoint, safe_mode=True)
        else:
            if not dist.plain:
                fit_model = _replica_model(config, len(data.classes), feature_mode)
                fit_model.set_weights(plain.get_weights())
            # the cosine schedule counts steps of the global batch
            steps_config = replace(config, batch_size=config.batch_size * dist.replicas)
            fit_model.compile(optimizer=optimizer(steps_config, len(data.split.train)),
                              loss=keras().losses.CategoricalCrossentropy(
                                  label_smoothing=config.label_smoothing),
                              metrics=["accuracy", balanced_accuracy(len(data.classes))])
    return _Models(model, fit_model, inputs, feature_mode, separate=fit_model is not plain)


def _fit(config: TrainConfig, data: _Data, models: _Models, run: RunFolder, state: RunState,
         hooks: _Hooks, dist: Distribution, board: RunBoard | None
         ) -> tuple[Any, list[dict[str, float]]]:
    """Train from the state's epoch on; returns the callback (stopped?) and the history."""
    split, n_classes = data.split, len(data.classes)
    mode, _ = parse_balance(config.balance)
    weights = class_weights(data.labels[split.train], n_classes) if mode == "class-weights" \
        else None
    history = run.read_history(state.epochs_completed)
    global_batch = config.batch_size * dist.replicas
    train_ds = make_dataset(models.inputs[split.train], data.labels[split.train], n_classes,
                            global_batch, config.seed + state.epochs_completed,
                            config.augment and not models.feature_mode)
    val_ds = make_dataset(models.inputs[split.val], data.labels[split.val], n_classes,
                          global_batch, None)
    train_ds, batches = whole_batches(train_ds, len(split.train), global_batch, dist.replicas)
    val_ds, _ = whole_batches(val_ds, len(split.val), global_batch, dist.replicas)

    def on_epoch(result: EpochResult) -> None:
        if board is not None:
            board.epoch(result.epoch, result.logs)
        if hooks.on_epoch:
            hooks.on_epoch(result)

    def stop() -> bool:  # across workers: every one leaves the loop after the same batch
        return dist.any_stop(hooks.stop())

    callback = run_callback(run, config.epochs, batches, state, history, on_epoch,
                            hooks.on_batch, stop, patience=config.early_stopping,
                            monitor=config.monitor)
    hooks.status(f"training on {len(split.train)} images, validating on {len(split.val)}"
                 + (f"; global batch {global_batch}" if dist.replicas > 1 else ""))
    if not stop() and state.epochs_completed < config.epochs:
        try:
            fit_loop(models.fit_model, dist.strategy, with_class_weights(train_ds, weights),
                     val_ds if len(split.val) else None, epochs=config.epochs,
                     initial_epoch=state.epochs_completed, callback=callback)
        except tf().errors.OpError as exc:
            if not dist.multi_worker:
                raise
            lines = str(exc).splitlines()
            why = next((line.strip() for line in lines if "task" in line), lines[0] if lines
                       else type(exc).__name__)
            raise TrainingError(f"a worker was lost during training ({why[:160]}); every "
                                "completed epoch is checkpointed: start the workers again "
                                "with --resume") from exc
    return callback, history


def _keep_best(models: _Models, run: RunFolder) -> _Models:
    """Load the best epoch's weights into the model that is saved; returns the plain model
    (and head) that is evaluated and saved."""
    target = models.fit_model
    if models.separate:  # a replica-side or resumed copy: its weights go into the plain model
        target = split_transfer(models.model)[1] if models.feature_mode else models.model
        target.set_weights(models.fit_model.get_weights())
    if run.file(run.BEST_WEIGHTS).is_file():
        target.load_weights(run.file(run.BEST_WEIGHTS))
    return _Models(models.model, target, models.inputs, models.feature_mode)


def _part(models: _Models, data: _Data, positions: np.ndarray) -> Part:
    return Part(models.inputs[positions], data.images[positions], data.labels[positions])


def _finish(config: TrainConfig, data: _Data, models: _Models, run: RunFolder,
            outcome: dict[str, Any], hooks: _Hooks, board: RunBoard) -> dict[str, Any]:
    """Fit the gate and temperature, evaluate the test part, save the model and results."""
    split, records = data.split, data.dataset.records
    train_unique = np.unique(split.train)
    trust = fit_trust(models.fit_model, _part(models, data, train_unique),
                      _part(models, data, split.val), status=hooks.status)
    hooks.status(f"evaluating on {len(split.test)} test images")
    metrics, table = evaluate_with_trust(models.fit_model, _part(models, data, split.test),
                                    records.iloc[split.test], data.classes, trust)
    leaky = config.split != "lesion"
    metrics.update(split=config.split, evaluated_on="val" if leaky else "test", leaky=leaky,
                   feature_cache=models.feature_mode, train_images=int(len(split.train)),
                   val_images=int(len(split.val)), problems=len(data.dataset.problems),
                   **outcome)
    info = ModelInfo(classes=data.classes, image_size=config.size, crop=config.crop,
                     architecture=config.model,
                     trained_on={"data": data.dataset.root.name,
                                 "layout": data.dataset.layout,
                                 "fingerprint": data.dataset.portable_fingerprint(),
                                 "split": config.split, "seed": config.seed,
                                 "images": int(len(records)), "balance": config.balance},
                     metrics={k: metrics[k] for k in ("accuracy", "balanced_accuracy",
                                                      "macro_auc", "melanoma_recall", "ece")},
                     temperature=trust.temperature.used)
    save_model(models.model, run.model_path, info, trust.domain,
               records["image_id"].iloc[train_unique])
    if litert_available():  # the twin answers Classify and predict without TensorFlow
        problem = ensure_twin(LoadedModel(info, run.model_path, model=models.model),
                              hooks.status)
        if problem:
            hooks.status(f"the model is saved, but {problem}")
    run.write_predictions(table)
    run.write_metrics(metrics)
    board.confusion(metrics["confusion_matrix"], data.classes, outcome["epochs_completed"])
    board.close()
    if not metrics["stopped"]:
        run.remove_checkpoint()  # a stopped run keeps it, so it can be resumed later
    hooks.status(f"saved run to {run.path}")
    return metrics


def _run(config: TrainConfig, run: RunFolder, resuming: bool, hooks: _Hooks) -> TrainResult:
    try:
        return _run_phases(config, run, resuming, hooks)
    finally:
        release_memory()  # the models, datasets and traces of this run, before the next one


def _run_phases(config: TrainConfig, run: RunFolder, resuming: bool,
                hooks: _Hooks) -> TrainResult:
    started = time.time()
    dist = make_distribution(config.strategy, config.cpu_devices, config.mixed_precision)
    hooks.status(f"device: {dist.description}")
    if not dist.is_chief:  # a worker other than the chief: its files go to a temporary copy
        with tempfile.TemporaryDirectory(prefix="skin-lesion-worker-") as scratch:
            own = RunFolder(Path(scratch) / "run")
            if resuming:
                shutil.copytree(run.path, own.path)
            return _train_phases(config, own, resuming, hooks, dist, started,
                                 shown_dir=run.path)
    return _train_phases(config, run, resuming, hooks, dist, started)


def _train_phases(config: TrainConfig, run: RunFolder, resuming: bool, hooks: _Hooks,
                  dist: Distribution, started: float,
                  shown_dir: Path | None = None) -> TrainResult:
    data = _prepare_data(config, hooks)
    run.path.mkdir(parents=True, exist_ok=True)
    keras().utils.set_random_seed(config.seed)
    state = _continue_run(run, config, data, hooks) if resuming else \
        _start_run(run, config, data, dist.replicas)
    board = RunBoard(run.file(run.TENSORBOARD)) if dist.is_chief else None
    models = _build_models(config, data, run, resuming, hooks, dist)
    callback, history = _fit(config, data, models, run, state, hooks, dist, board)
    stopped = bool(callback.stopped or hooks.stop())
    if board is None or not dist.is_chief:  # the chief evaluates and saves
        hooks.status("training done; waiting while the chief worker evaluates and saves "
                     "the run")
        dist.barrier()  # leave with the chief, not before it (see Distribution.barrier)
        hooks.status("training done; the chief worker wrote the run folder")
        return TrainResult(shown_dir or run.path, {}, history, stopped, state.best_epoch,
                           chief=False)
    if stopped and not history:  # nothing learnt: no model to evaluate, save or list
        hooks.status("stopped before the first epoch ended: nothing to evaluate; the run "
                     "is kept as unfinished (Resume starts it again)")
        if board is not None:
            board.close()
        dist.barrier()  # the other workers wait for the chief here too
        return TrainResult(run.path, {"stopped": True, "unfinished": True,
                                      "epochs_completed": 0}, history, True, 0)
    final = _keep_best(models, run)
    outcome = {"best_epoch": state.best_epoch, "epochs_completed": len(history),
               "stopped": stopped, "early_stopped": callback.early_stopped,
               "strategy": config.strategy, "replicas": dist.replicas,
               "device": dist.description, "seconds": round(time.time() - started, 1)}
    metrics = _finish(config, data, final, run, outcome, hooks, board)
    dist.barrier()  # the other workers waited for the run folder; now all leave together
    return TrainResult(run.path, metrics, history, bool(metrics["stopped"]), state.best_epoch)


# ----- entry points ------------------------------------------------------------------------
def _hooks(on_epoch: Callable[[EpochResult], None] | None,
           on_batch: Callable[[BatchProgress], None] | None,
           should_stop: Callable[[], bool] | None, on_status: Callable[[str], None] | None,
           on_load_progress: Callable[[int, int], None] | None) -> _Hooks:
    return _Hooks(on_epoch, on_batch, should_stop or (lambda: False),
                  on_status or (lambda _msg: None), on_load_progress)


def train(config: TrainConfig, *, out_dir: str | Path | None = None,
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
    resolved = config.resolve()
    run = RunFolder(out_dir if out_dir else new_run_dir(resolved.model))
    return _run(resolved, run, False,
                _hooks(on_epoch, on_batch, should_stop, on_status, on_load_progress))


def resume(run_dir: str | Path, *, on_epoch: Callable[[EpochResult], None] | None = None,
           on_batch: Callable[[BatchProgress], None] | None = None,
           should_stop: Callable[[], bool] | None = None,
           on_status: Callable[[str], None] | None = None,
           on_load_progress: Callable[[int, int], None] | None = None) -> TrainResult:
    """Continue a run that was stopped or killed from its last completed epoch.

    Takes the same hooks as `train`. The dataset must be unchanged (the split is recomputed
    from the saved seed and compared with the run's split.csv).
    """
    run = RunFolder(run_dir)
    problem = run.resume_problem()
    if problem:
        raise DatasetError(problem)
    config = run.read_config().resolve()
    if not run.has_checkpoint():  # stopped before its first epoch: start it again, same folder
        return _run(config, run, False,
                    _hooks(on_epoch, on_batch, should_stop, on_status, on_load_progress))
    return _run(config, run, True,
                _hooks(on_epoch, on_batch, should_stop, on_status, on_load_progress))
