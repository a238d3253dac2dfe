"""The run library: list, read and delete the run folders that `train` writes."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import paths
from core.errors import SkinLesionError

if TYPE_CHECKING:
    import pandas as pd


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
    summary = RunSummary(folder, folder.name,
                         created=datetime.fromtimestamp(folder.stat().st_mtime))
    try:
        config = _read_json(folder / "config.json")
        summary.model, summary.split = str(config.get("model", "")), str(config.get("split", ""))
    except (OSError, ValueError) as exc:
        summary.damaged = f"config.json unreadable ({type(exc).__name__})"
        return summary
    has_checkpoint = (folder / "checkpoint.keras").is_file()
    try:
        metrics = _read_json(folder / "metrics.json")
        summary.balanced_accuracy = metrics.get("balanced_accuracy")
        summary.stopped = bool(metrics.get("stopped", False))
        summary.resumable = summary.stopped and has_checkpoint
    except FileNotFoundError:
        summary.resumable = has_checkpoint
        summary.damaged = "unfinished" + (" (can be resumed)" if has_checkpoint else
                                          ", no completed epoch")
    except (OSError, ValueError) as exc:
        summary.damaged = f"metrics.json unreadable ({type(exc).__name__})"
    if not summary.damaged and not (folder / "model.keras").is_file():
        summary.damaged = "model.keras missing"
    return summary


def list_runs(root: Path | None = None) -> list[RunSummary]:
    """Every run folder under `root` (default: the per-user runs folder), newest first."""
    root = root or paths.runs_dir()
    if not root.is_dir():
        return []
    runs = [summarize_run(d) for d in root.iterdir()
            if d.is_dir() and not d.name.startswith(".")]
    return sorted(runs, key=lambda r: r.created or datetime.min, reverse=True)


def read_run(folder: Path) -> RunDetails:
    """Config, metrics, history and test predictions of one run."""
    import pandas as pd

    summary = summarize_run(folder)
    if summary.damaged:
        raise SkinLesionError(f"run {folder.name} is damaged: {summary.damaged}")
    history = pd.read_csv(folder / "history.csv") if (folder / "history.csv").is_file() \
        else pd.DataFrame()
    predictions = pd.read_csv(folder / "predictions.csv", dtype={"image_id": str}) \
        if (folder / "predictions.csv").is_file() else None
    return RunDetails(summary, _read_json(folder / "config.json"),
                      _read_json(folder / "metrics.json"), history, predictions)


def delete_run(folder: Path) -> None:
    """Remove a run folder (only folders that look like runs)."""
    if not (folder / "config.json").exists():
        raise SkinLesionError(f"{folder} does not look like a run folder; not deleted")
    shutil.rmtree(folder)
