"""Run folders: `RunFolder` owns a run's files; the run library lists, reads and deletes them.

A run folder holds `config.json` (the resolved `TrainConfig`), `split.csv`, `history.csv`,
`metrics.json`, `predictions.csv`, `model.keras` and `tensorboard/` (event files); while a run
is unfinished or stopped also `checkpoint.keras`, `best.weights.h5` and `state.json`, from
which it can be resumed. Every file is written atomically. Nothing else knows these names.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import paths
from core.errors import DatasetError, SkinLesionError

if TYPE_CHECKING:
    import pandas as pd

    from core.config import TrainConfig


CV_GROUP = "cv.json"  # marks a cross-validation group folder: one run folder per fold


@dataclass
class RunState:
    """Progress of a run, as saved after each completed epoch."""

    epochs_completed: int = 0
    best_epoch: int | None = None
    best_loss: float = math.inf  # the best monitored score so far (lower is better)



def new_run_dir(name: str) -> Path:
    """A fresh folder name under the per-user runs folder: a time stamp, then `name` (a run's
    model, or a cross-validation group's model and fold count), numbered if it exists."""
    base = paths.runs_dir() / f"{datetime.now():%Y%m%d-%H%M%S}-{name}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate

class RunFolder:
    """One training run's folder and every file in it."""

    CONFIG, SPLIT, HISTORY = "config.json", "split.csv", "history.csv"
    METRICS, PREDICTIONS, MODEL = "metrics.json", "predictions.csv", "model.keras"
    CHECKPOINT, BEST_WEIGHTS, STATE = "checkpoint.keras", "best.weights.h5", "state.json"
    REPORT, TENSORBOARD = "report.html", "tensorboard"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        """The path of one of the run's files (a name above)."""
        return self.path / name

    @property
    def model_path(self) -> Path:
        """The finished run's model file."""
        return self.file(self.MODEL)

    @property
    def name(self) -> str:
        """The folder's name."""
        return self.path.name

    # ----- config and split --------------------------------------------------------------
    def read_config_json(self) -> dict[str, Any]:
        """`config.json` as a dict; raises `DatasetError` when it is missing or unreadable."""
        try:
            return _read_json(self.file(self.CONFIG))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{self.name}: config.json is unreadable "
                               f"({type(exc).__name__})") from exc

    def read_config(self) -> TrainConfig:
        """The run's `TrainConfig`."""
        from core.config import from_json

        try:
            return from_json(self.read_config_json())
        except TypeError as exc:
            raise DatasetError(f"{self.name}: config.json does not describe a run") from exc

    def write_config(self, config: TrainConfig, replicas: int = 1) -> None:
        """Store the (resolved) config and the replicas it trains on."""
        self.path.mkdir(parents=True, exist_ok=True)
        paths.write_text_atomic(self.file(self.CONFIG), json.dumps(
            {**asdict(config), "replicas": replicas}, indent=2, default=str))

    def read_split(self) -> pd.DataFrame:
        """`split.csv`: image_id, lesion_id, dx, subset."""
        import pandas as pd

        if not self.file(self.SPLIT).is_file():
            raise DatasetError(f"{self.path} has no split.csv: it is not a training run folder")
        return pd.read_csv(self.file(self.SPLIT), dtype=str, keep_default_na=False)

    def write_split(self, table: pd.DataFrame) -> None:
        """Store the split."""
        with paths.atomic_path(self.file(self.SPLIT)) as tmp:
            table.to_csv(tmp, index=False)

    # ----- progress ----------------------------------------------------------------------
    def read_state(self) -> RunState:
        """The saved progress (a fresh state when there is none)."""
        path = self.file(self.STATE)
        if not path.is_file():
            return RunState()
        data = json.loads(path.read_text())
        best_loss = data.get("best_loss")
        return RunState(int(data["epochs_completed"]), data.get("best_epoch"),
                        math.inf if best_loss is None else float(best_loss))

    def write_state(self, state: RunState) -> None:
        """Store the progress after an epoch."""
        paths.write_text_atomic(self.file(self.STATE), json.dumps({
            "epochs_completed": state.epochs_completed, "best_epoch": state.best_epoch,
            "best_loss": None if math.isinf(state.best_loss) else state.best_loss}))

    def read_history(self, epochs_completed: int | None = None) -> list[dict[str, float]]:
        """History rows (only the first `epochs_completed`: a row written after the last
        saved state is dropped)."""
        path = self.file(self.HISTORY)
        if not path.is_file() or epochs_completed == 0:
            return []
        import pandas as pd

        rows = pd.read_csv(path).to_dict("records")
        if epochs_completed is not None:
            rows = rows[:epochs_completed]
        return [{str(k): float(v) for k, v in row.items()} for row in rows]

    def write_history(self, rows: list[dict[str, float]]) -> None:
        """Store the per-epoch history."""
        import pandas as pd

        with paths.atomic_path(self.file(self.HISTORY)) as tmp:
            pd.DataFrame(rows).to_csv(tmp, index=False)

    # ----- results -----------------------------------------------------------------------
    def read_metrics(self) -> dict[str, Any] | None:
        """`metrics.json`, or None while the run has not ended."""
        path = self.file(self.METRICS)
        return _read_json(path) if path.is_file() else None

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        """Store the run's final metrics."""
        paths.write_text_atomic(self.file(self.METRICS), json.dumps(metrics, indent=2))

    def read_predictions(self) -> pd.DataFrame | None:
        """The test part's per-image predictions, if saved."""
        import pandas as pd

        path = self.file(self.PREDICTIONS)
        return pd.read_csv(path, dtype={"image_id": str}) if path.is_file() else None

    def write_predictions(self, table: pd.DataFrame) -> None:
        """Store the test part's per-image predictions."""
        with paths.atomic_path(self.file(self.PREDICTIONS)) as tmp:
            table.to_csv(tmp, index=False)

    # ----- resuming ----------------------------------------------------------------------
    def has_checkpoint(self) -> bool:
        """Whether a completed epoch was checkpointed."""
        return self.file(self.CHECKPOINT).is_file()

    def remove_checkpoint(self) -> None:
        """Delete the resume files once the run's final model is saved."""
        for name in (self.CHECKPOINT, self.BEST_WEIGHTS, self.STATE):
            self.file(name).unlink(missing_ok=True)

    def resume_problem(self) -> str:
        """Why the run cannot be resumed ('' when it can)."""
        try:
            self.read_config()
        except DatasetError:
            return f"{self.name} is not a resumable run: config.json unreadable"
        try:
            metrics = self.read_metrics()
        except (OSError, ValueError):
            metrics = None
        if metrics is not None and not metrics.get("stopped"):
            return f"run {self.name} has already finished; nothing to resume"
        if not self.has_checkpoint() and not self.file(self.SPLIT).is_file():
            return (f"run {self.name} has no checkpoint and no split (it ended before its "
                    "first epoch); start a new run instead")
        return ""  # without a checkpoint (no epoch completed) it starts again from epoch 1

    def resumable(self) -> bool:
        """True for a stopped or killed run with a checkpoint to continue from."""
        return not self.resume_problem()


@dataclass
class RunSummary:
    """One row of the run list; `damaged` says why a run folder cannot be used."""

    path: Path
    name: str
    model: str = ""
    created: datetime | None = None
    balanced_accuracy: float | None = None
    split: str = ""
    stopped: bool = False
    damaged: str = ""
    resumable: bool = False  # a checkpoint to continue from (stopped or killed run)


@dataclass
class RunDetails:
    """Everything a view needs to show one run (no Keras objects)."""

    summary: RunSummary
    config: dict[str, Any]
    metrics: dict[str, Any]
    history: pd.DataFrame
    predictions: pd.DataFrame | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def summarize_run(folder: Path) -> RunSummary:
    """Read a run folder's summary; problems go into `damaged`, never raise."""
    run = RunFolder(folder)
    summary = RunSummary(folder, folder.name,
                         created=datetime.fromtimestamp(folder.stat().st_mtime))
    try:
        config = _read_json(run.file(run.CONFIG))
        summary.model, summary.split = str(config.get("model", "")), str(config.get("split", ""))
        folds, fold = int(config.get("folds") or 1), int(config.get("fold") or 0)
        if folds > 1 and fold:  # one fold of a cross-validation (core.cross_validation)
            group = folder.parent.name if (folder.parent / CV_GROUP).is_file() else folder.name
            summary.name = f"{group} · fold {fold}/{folds}"
    except (OSError, ValueError) as exc:
        summary.damaged = f"config.json unreadable ({type(exc).__name__})"
        return summary
    try:
        metrics = run.read_metrics()
    except (OSError, ValueError) as exc:
        summary.damaged = f"metrics.json unreadable ({type(exc).__name__})"
        return summary
    summary.resumable = run.resumable()
    if metrics is None:
        summary.damaged = "unfinished" + (" (can be resumed)" if summary.resumable else
                                          ", nothing to resume")
        return summary
    summary.balanced_accuracy = metrics.get("balanced_accuracy")
    summary.stopped = bool(metrics.get("stopped", False))
    if not run.model_path.is_file():
        summary.damaged = "model.keras missing"
    return summary


def list_runs(root: Path | None = None) -> list[RunSummary]:
    """Every run folder under `root` (default: the per-user runs folder), newest first."""
    root = root or paths.runs_dir()
    if not root.is_dir():
        return []
    folders = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
    runs = [summarize_run(d) for folder in folders  # a cross-validation group: its folds
            for d in (sorted(f for f in folder.iterdir() if f.is_dir())
                      if (folder / CV_GROUP).is_file() else [folder])]
    return sorted(runs, key=lambda r: r.created or datetime.min, reverse=True)


def read_run(folder: Path) -> RunDetails:
    """Config, metrics, history and test predictions of one run."""
    import pandas as pd

    summary = summarize_run(folder)
    if summary.damaged:
        raise SkinLesionError(f"run {folder.name} is damaged: {summary.damaged}")
    run = RunFolder(folder)
    history = pd.DataFrame(run.read_history())
    return RunDetails(summary, run.read_config_json(), run.read_metrics() or {}, history,
                      run.read_predictions())


def delete_run(folder: Path) -> None:
    """Remove a run folder (only folders that look like runs)."""
    if not RunFolder(folder).file(RunFolder.CONFIG).exists():
        raise SkinLesionError(f"{folder} does not look like a run folder; not deleted")
    shutil.rmtree(folder)
