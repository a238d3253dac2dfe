"""Lesion-grouped k-fold cross-validation: K normal runs in one group folder, and a summary.

A group folder (`<stamp>-<model>-cv<K>` under the runs folder) holds `cv.json` (the
settings, K, and what the folds are grouped by), one normal run folder per fold (`fold1` …
`foldK`; each one's config says `folds` K and `fold` i, so it lists, reports and resumes as
any run, and a resume recomputes the same split), and, once every fold has finished,
`cv_summary.json`: each fold's figures and their mean ± SD. Folds come from
`core.splits.grouped_folds` (stratified by dx, no lesion or patient in two test parts);
within a fold the rest is split into train/val by group, and only the training part is
balanced, as in a normal run.

Stopping ends the fold that runs as a stopped (resumable) run and starts no other;
`resume_cv` (or `train --resume GROUP`) skips the finished folds, resumes the stopped one
and runs the rest.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from core import paths
from core.config import TrainConfig, from_json
from core.errors import DatasetError
from core.runs import CV_GROUP, RunFolder, new_run_dir

SUMMARY = "cv_summary.json"
METRICS = ("balanced_accuracy", "melanoma_recall", "macro_auc", "accuracy")
TITLES = {"balanced_accuracy": "balanced accuracy", "melanoma_recall": "melanoma recall",
          "macro_auc": "macro AUC", "accuracy": "accuracy"}


@dataclass
class FoldStarted:
    """Sent (through `on_fold`) when a fold starts or resumes (1-based `fold`)."""

    fold: int
    folds: int
    run_dir: str
    epochs: int
    epochs_done: int = 0  # completed epochs of a resumed fold


@dataclass
class CvResult:
    """What a cross-validation produced (`summary` is None until every fold has finished)."""

    group_dir: Path
    summary: dict[str, Any] | None
    stopped: bool
    last_run: Path  # the fold that ran last
    last_metrics: dict[str, Any]


def group_of(path: str | Path) -> Path | None:
    """The cross-validation group folder `path` is, or is a fold of (None: neither)."""
    path = Path(path)
    for candidate in (path, path.parent):
        if (candidate / CV_GROUP).is_file():
            return candidate
    return None


def wants_cv(config: TrainConfig | None, resume_dir: str | Path | None) -> bool:
    """Whether a train (or resume) request is a cross-validation: K > 1 folds and no single
    fold chosen, or resuming a group or one of its folds."""
    if resume_dir is not None:
        return group_of(resume_dir) is not None
    return config is not None and config.folds > 1 and config.fold == 0


def fold_dir(group: Path, fold: int) -> Path:
    """The run folder of fold `fold` (1-based) in `group`."""
    return group / f"fold{fold}"


def read_group(group: Path) -> dict[str, Any]:
    """`cv.json` of a group folder."""
    try:
        data = json.loads((group / CV_GROUP).read_text(encoding="utf-8"))
        from_json(data["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{group.name}: {CV_GROUP} is unreadable ({type(exc).__name__})"
                           ) from exc
    return dict(data)


class CvClock:
    """Progress over every fold, counted in epochs, and an ETA from this session's pace."""

    def __init__(self, folds: int, epochs: int) -> None:
        self.folds, self.epochs, self.fold = folds, epochs, 1
        self._started: float | None = None
        self._trained = 0

    def fold_started(self, event: FoldStarted) -> None:
        self.fold = event.fold
        if self._started is None:
            self._started = time.monotonic()

    def epoch_done(self, epoch: int) -> tuple[int, int, float | None]:
        """(epochs done over all folds, epochs in all, seconds left or None)."""
        self._trained += 1
        done, total = (self.fold - 1) * self.epochs + epoch, self.folds * self.epochs
        if self._started is None:
            return done, total, None
        pace = (time.monotonic() - self._started) / self._trained
        return done, total, pace * (total - done)


def _finished(run: RunFolder) -> dict[str, Any] | None:
    """The metrics of a fold that has finished (not stopped), else None."""
    try:
        metrics = run.read_metrics()
    except (OSError, ValueError):
        return None
    return metrics if metrics is not None and not metrics.get("stopped") else None


def cross_validate(config: TrainConfig, *, out_dir: str | Path | None = None,
                   on_fold: Callable[[FoldStarted], None] | None = None,
                   **hooks: Any) -> CvResult:
    """Train one run per fold of `config.folds` into a new group folder, then summarise.

    `hooks` are `core.training.train`'s (on_epoch, on_batch, should_stop, on_status,
    on_load_progress); they see each fold's own epochs, and `on_fold` says which fold runs.
    """
    from core.dataset import load_dataset
    from core.splits import fold_groups, grouped_folds

    resolved = replace(config, fold=0).resolve()
    if resolved.folds < 2:
        raise DatasetError("cross-validation needs at least 2 folds")
    if resolved.strategy == "multi-worker":
        raise DatasetError("cross-validation trains on one host: multi-worker is not offered")
    records = load_dataset(resolved.data_dir).records
    grouped_folds(records, resolved.folds, resolved.seed)  # too few lesions: said now
    group = Path(out_dir) if out_dir else new_run_dir(f"{resolved.model}-cv{resolved.folds}")
    group.mkdir(parents=True, exist_ok=True)
    paths.write_text_atomic(group / CV_GROUP, json.dumps(
        {"folds": resolved.folds, "grouped_by": fold_groups(records)[1],
         "created": datetime.now().isoformat(timespec="seconds"),
         "config": asdict(resolved)}, indent=2, default=str))
    return _run_folds(group, resolved, on_fold, hooks)


def resume_cv(path: str | Path, *, on_fold: Callable[[FoldStarted], None] | None = None,
              **hooks: Any) -> CvResult:
    """Continue a group (or the group of a fold): finished folds are kept, a stopped or
    killed one resumes from its last completed epoch, and the rest are trained."""
    group = group_of(path)
    if group is None:
        raise DatasetError(f"{path} is not a cross-validation group folder")
    if (group / SUMMARY).is_file():
        raise DatasetError(f"cross-validation {group.name} has already finished; nothing "
                           "to resume")
    config = from_json(read_group(group)["config"]).resolve()
    return _run_folds(group, config, on_fold, hooks)


def run_cv(config: TrainConfig | None, resume_dir: str | Path | None, **hooks: Any) -> CvResult:
    """`resume_cv(resume_dir)` when given, else `cross_validate(config)` (see `wants_cv`)."""
    if resume_dir is not None:
        return resume_cv(resume_dir, **hooks)
    if config is None:
        raise ValueError("run_cv needs a config or a group folder to resume")
    return cross_validate(config, **hooks)


def _run_folds(group: Path, config: TrainConfig, on_fold: Callable[[FoldStarted], None] | None,
               hooks: dict[str, Any]) -> CvResult:
    from core.training import resume, train

    should_stop = hooks.get("should_stop") or (lambda: False)
    status = hooks.get("on_status") or (lambda _m: None)
    results: list[dict[str, Any]] = []
    last, last_metrics = group, dict[str, Any]()
    for fold in range(1, config.folds + 1):
        run = RunFolder(fold_dir(group, fold))
        metrics = _finished(run)
        if metrics is not None:
            results.append(metrics)
            continue
        if should_stop():
            return CvResult(group, None, True, last, last_metrics)
        resumable = run.file(run.CONFIG).is_file() and run.resumable()
        done = run.read_state().epochs_completed if resumable else 0
        status(f"fold {fold}/{config.folds}: " + (f"resuming {run.path}" if resumable
                                                  else f"training {run.path}"))
        if on_fold:
            on_fold(FoldStarted(fold, config.folds, str(run.path), config.epochs, done))
        result = resume(run.path, **hooks) if resumable else \
            train(replace(config, fold=fold), out_dir=run.path, **hooks)
        last, last_metrics = result.run_dir, result.metrics
        if result.stopped:
            return CvResult(group, None, True, last, last_metrics)
        results.append(result.metrics)
    summary = summarize(group, config, results)
    paths.write_text_atomic(group / SUMMARY, json.dumps(summary, indent=2))
    status(f"cross-validation summary saved to {group / SUMMARY}")
    return CvResult(group, summary, False, last, last_metrics)


def _mean_sd(values: list[float]) -> dict[str, Any]:
    n = len(values)
    mean = sum(values) / n if n else None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 and mean is not None \
        else None
    return {"mean": mean, "sd": sd, "n": n}


def summarize(group: Path, config: TrainConfig, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Each fold's figures and their mean ± SD (sample SD, over the folds that have a value:
    melanoma recall and macro AUC are n/a in a fold without the classes they need)."""
    try:
        grouped_by = read_group(group).get("grouped_by", "lesion")
    except DatasetError:
        grouped_by = "lesion"
    per_fold: list[dict[str, Any]] = [
        {"fold": i, "run": fold_dir(group, i).name, "test_images": m.get("n_images"),
         "best_epoch": m.get("best_epoch"), **{k: m.get(k) for k in METRICS}}
        for i, m in enumerate(results, 1)]
    stats = {k: _mean_sd([float(r[k]) for r in per_fold if r[k] is not None]) for k in METRICS}
    return {"group": group.name, "folds": config.folds, "grouped_by": grouped_by,
            "model": config.model, "seed": config.seed, "epochs": config.epochs,
            "per_fold": per_fold, "mean_sd": stats,
            "note": "SD is the sample standard deviation over the folds"}


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def summary_text(summary: dict[str, Any]) -> str:
    """The summary as a table of folds and one `mean ± SD` line per figure."""
    lines = [f"{summary['folds']}-fold cross-validation, grouped by {summary['grouped_by']} "
             f"({summary['group']})",
             "fold  bal. acc.  mel. recall  macro AUC  accuracy  test images"]
    for r in summary["per_fold"]:
        lines.append(f"{r['fold']:>4}  {_num(r['balanced_accuracy']):>9}  "
                     f"{_num(r['melanoma_recall']):>11}  {_num(r['macro_auc']):>9}  "
                     f"{_num(r['accuracy']):>8}  {r['test_images'] or 0:>11}")
    for key in METRICS:
        s = summary["mean_sd"][key]
        spread = f" ± {s['sd']:.3f}" if s["sd"] is not None else ""
        folds = f"{s['n']} folds" if s["n"] == summary["folds"] else \
            f"{s['n']} of {summary['folds']} folds"
        lines.append(f"{TITLES[key]}: {_num(s['mean'])}{spread}  (mean ± SD over {folds})")
    return "\n".join(lines)
