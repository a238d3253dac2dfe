"""The Keras callback that drives a run: hooks, stop within a batch, a checkpoint per epoch.

After every completed epoch the run folder holds `checkpoint.keras` (model and optimizer),
`best.weights.h5` (the best epoch by validation loss so far), `history.csv` and `state.json`,
each written atomically, so a killed run can be resumed from its last completed epoch.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import paths
from core.backend import keras

CHECKPOINT = "checkpoint.keras"
BEST_WEIGHTS = "best.weights.h5"
STATE = "state.json"


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
class RunState:
    """Progress of a run, as saved after each completed epoch."""

    epochs_completed: int = 0
    best_epoch: int | None = None
    best_loss: float = math.inf  # the best monitored score so far (lower is better)


def read_state(run_dir: Path) -> RunState:
    """The saved progress of a run (a fresh state when there is none)."""
    path = run_dir / STATE
    if not path.is_file():
        return RunState()
    data = json.loads(path.read_text())
    best_loss = data.get("best_loss")
    return RunState(int(data["epochs_completed"]), data.get("best_epoch"),
                    math.inf if best_loss is None else float(best_loss))


def read_history(run_dir: Path, epochs_completed: int) -> list[dict[str, float]]:
    """History rows of the completed epochs (a row written after the last state is dropped)."""
    path = run_dir / "history.csv"
    if not path.is_file() or epochs_completed == 0:
        return []
    import pandas as pd

    rows = pd.read_csv(path).to_dict("records")
    return [{str(k): float(v) for k, v in row.items()} for row in rows[:epochs_completed]]


def monitored_score(row: dict[str, float], monitor: str) -> float:
    """The epoch's score to minimise: the loss, or minus an accuracy (training values without
    a validation part)."""
    if monitor == "val_balanced_accuracy":
        return -row.get(monitor, row.get("balanced_accuracy", -math.inf))
    return row.get("val_loss", row.get("loss", math.inf))


def remove_checkpoint(run_dir: Path) -> None:
    """Delete the resume files once the run's final model is saved."""
    for name in (CHECKPOINT, BEST_WEIGHTS, STATE):
        (run_dir / name).unlink(missing_ok=True)


def run_callback(run_dir: Path, epochs: int, batches: int, state: RunState,
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
            import pandas as pd

            with paths.atomic_path(run_dir / CHECKPOINT) as tmp:
                self.model.save(tmp)
            loss = monitored_score(row, monitor)
            if loss < self.state.best_loss:
                self.state.best_loss, self.state.best_epoch = loss, self._epoch
                with paths.atomic_path(run_dir / BEST_WEIGHTS) as tmp:
                    self.model.save_weights(tmp)
            with paths.atomic_path(run_dir / "history.csv") as tmp:
                pd.DataFrame(history).to_csv(tmp, index=False)
            self.state.epochs_completed = self._epoch
            paths.write_text_atomic(run_dir / STATE, json.dumps({
                "epochs_completed": self.state.epochs_completed,
                "best_epoch": self.state.best_epoch,
                "best_loss": None if math.isinf(self.state.best_loss) else self.state.best_loss,
            }))

    return RunCallback()
