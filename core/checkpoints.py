"""The Keras callback that drives a run: hooks, stop within a batch, a checkpoint per epoch.

After every completed epoch the run folder (`core.runs.RunFolder`) holds the checkpoint (model
and optimizer), the best epoch's weights so far, the history and the state, each written
atomically, so a killed run can be resumed from its last completed epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core import paths
from core.backend import keras
from core.runs import RunFolder, RunState


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


def monitored_score(row: dict[str, float], monitor: str) -> float:
    """The epoch's score to minimise: the loss, or minus an accuracy (training values without
    a validation part)."""
    if monitor == "val_balanced_accuracy":
        return -row.get(monitor, row.get("balanced_accuracy", -math.inf))
    return row.get("val_loss", row.get("loss", math.inf))


def run_callback(run: RunFolder, epochs: int, batches: int, state: RunState,
                 history: list[dict[str, float]],
                 on_epoch: Callable[[EpochResult], None] | None,
                 on_batch: Callable[[BatchProgress], None] | None,
                 should_stop: Callable[[], bool], patience: int = 0,
                 monitor: str = "val_loss") -> Any:
    """A Keras callback forwarding progress, stopping within one batch, checkpointing.

    The best epoch is the one with the lowest `monitor` ("val_loss") or the highest
    ("val_balanced_accuracy"). With `patience` > 0 training also ends (early stopping, not a
    user stop) after that many epochs without a better one.
    """

    class RunCallback(keras().callbacks.Callback):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.stopped = False
            self.early_stopped = False
            self.state = state
            self._epoch = 0
            self._started = 0.0

        def _poll(self) -> None:
            if should_stop():
                self.stopped = True
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
            if self.stopped:
                return  # a partial epoch is neither recorded nor kept
            row = {"epoch": float(self._epoch), **{k: float(v) for k, v in (logs or {}).items()}}
            history.append(row)
            self._save(row)
            if on_epoch:
                on_epoch(EpochResult(self._epoch, epochs, row, time.perf_counter() - self._started))
            best = self.state.best_epoch or 0
            if patience and self._epoch - best >= patience:
                self.early_stopped = True
                self.model.stop_training = True
            self._poll()

        def _save(self, row: dict[str, float]) -> None:
            with paths.atomic_path(run.file(run.CHECKPOINT)) as tmp:
                self.model.save(tmp)
            loss = monitored_score(row, monitor)
            if loss < self.state.best_loss:
                self.state.best_loss, self.state.best_epoch = loss, self._epoch
                with paths.atomic_path(run.file(run.BEST_WEIGHTS)) as tmp:
                    self.model.save_weights(tmp)
            run.write_history(history)
            self.state.epochs_completed = self._epoch
            run.write_state(self.state)

    return RunCallback()
