"""The one training loop every strategy uses: Keras' own train and test steps, run per replica.

`model.fit` under `MultiWorkerMirroredStrategy` fails in Keras 3 ("Attempt to convert a value
(PerReplica…)", keras-team/keras#20585). This loop wraps the same `model.train_step` /
`model.test_step` (loss, loss scaling for mixed precision, optimizer, metrics) in
`strategy.run` and `strategy.reduce`, and drives the run's Keras callback as `fit` does
(`on_epoch_begin`, `on_train_batch_end`, `on_test_batch_end`, `on_epoch_end`, and
`model.stop_training`), so progress, stopping and checkpoints behave the same on one device,
on mirrored devices and across workers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from core.backend import tf


def _floats(logs: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in logs.items()}


def _step(strategy: Any, step: Callable[[Any], Any]) -> Any:
    """`step` on every replica, its logs averaged (the metrics are already in sync)."""
    tf_ = tf()

    @tf_.function
    def run(batch: Any) -> Any:
        logs = strategy.run(step, args=(batch,))
        return {k: strategy.reduce("MEAN", v, axis=None) for k, v in logs.items()}

    return run


def with_class_weights(ds: Any, weights: dict[int, float] | None) -> Any:
    """Add per-image weights from class weights (what `fit(class_weight=...)` does)."""
    if not weights:
        return ds
    tf_ = tf()
    table = tf_.constant(np.array([weights.get(i, 1.0) for i in range(max(weights) + 1)],
                                  dtype=np.float32))
    return ds.map(lambda x, y: (x, y, tf_.gather(table, tf_.argmax(y, axis=-1))))


def whole_batches(ds: Any, n: int, global_batch: int, replicas: int) -> tuple[Any, int]:
    """`ds` and its batch count, without a last batch smaller than the replicas: it would
    leave a replica with no image and a NaN loss (a few images of the epoch are skipped)."""
    full, rest = divmod(n, global_batch)
    if 0 < rest < replicas:
        return ds.take(full), full
    return ds, full + (rest > 0)


def fit_loop(model: Any, strategy: Any, train_ds: Any, val_ds: Any | None, *, epochs: int,
             initial_epoch: int, callback: Any) -> None:
    """Train `model` (compiled in `strategy`'s scope) from `initial_epoch` to `epochs`.

    `train_ds` and `val_ds` are batched with the global batch; they are split across the
    replicas here. `callback` sees the same calls and logs as under `model.fit`.
    """
    train_dist = strategy.experimental_distribute_dataset(train_ds)
    val_dist = strategy.experimental_distribute_dataset(val_ds) if val_ds is not None else None
    with strategy.scope():  # optimizer and metric variables, before the step is traced
        # as fit does (Keras 3.15), from the element spec: reading a batch would start an
        # extra pass, and the reshuffled order of every epoch would move by one
        model._symbolic_build(data_batch=train_ds.element_spec)
    train_step, test_step = _step(strategy, model.train_step), _step(strategy, model.test_step)
    callback.set_model(model)
    model.stop_training = False
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback.on_epoch_begin(epoch)
        logs: dict[str, float] = {}
        for index, batch in enumerate(train_dist):
            logs = _floats(train_step(batch))
            callback.on_train_batch_end(index, logs)
            if model.stop_training:
                break
        else:
            # model.fit (Keras 3.15) opens one more pass after a full epoch and never reads
            # it; so does this loop, so a seed shuffles every epoch as it did under fit
            iter(train_dist)
        epoch_logs = dict(logs)
        if val_dist is not None:
            model.reset_metrics()
            model.stop_evaluating = False
            val_logs: dict[str, float] = {}
            for index, batch in enumerate(val_dist):
                val_logs = _floats(test_step(batch))
                callback.on_test_batch_end(index, val_logs)
                if model.stop_evaluating:
                    break
            epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
        callback.on_epoch_end(epoch, dict(sorted(epoch_logs.items())))  # fit's order
        if model.stop_training:
            break
    model.optimizer.finalize_variable_values(model.trainable_weights)
