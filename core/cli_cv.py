"""`main.py train --folds K` and `train --resume GROUP`: cross-validation on the command line.

Called by `core.cli.cmd_train` when `core.cross_validation.wants_cv` says so; it prints
each fold's epochs with the progress over all folds and an ETA, then the summary.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.checkpoints import EpochResult
from core.cli import _emit, _say
from core.config import TrainConfig
from core.cross_validation import CvClock, FoldStarted, run_cv, summary_text


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def train_folds(args: argparse.Namespace, config: TrainConfig, hooks: dict[str, Any]) -> int:
    """Run (or resume) a cross-validation with the CLI's hooks; print its summary."""
    clock: CvClock | None = None

    def on_fold(event: FoldStarted) -> None:
        nonlocal clock
        if clock is None:
            clock = CvClock(event.folds, event.epochs)
        clock.fold_started(event)  # the run says which fold starts (a status line)

    def on_epoch(e: EpochResult) -> None:
        logs = "  ".join(f"{k} {v:.4f}" for k, v in e.logs.items() if k != "epoch")
        overall = ""
        if clock is not None:
            done, total, left = clock.epoch_done(e.epoch)
            eta = "" if left is None else f", ETA {_clock(left)}"
            overall = f"  [fold {clock.fold}/{clock.folds}, all folds {done}/{total}{eta}]"
        _say(f"\repoch {e.epoch}/{e.epochs} ({e.seconds:.1f}s)  {logs}{overall}")

    hooks = {**hooks, "on_epoch": on_epoch}
    result = run_cv(config, args.resume, out_dir=args.out, on_fold=on_fold, **hooks) \
        if args.resume is None else run_cv(None, args.resume, on_fold=on_fold, **hooks)
    if result.summary is None:
        _emit(args, {"group_dir": str(result.group_dir), "stopped": True,
                     "run_dir": str(result.last_run)},
              f"cross-validation {result.group_dir} stopped in {result.last_run.name} "
              f"(kept resumable); `train --resume {result.group_dir}` continues it and "
              "then trains the remaining folds")
        return 0
    _emit(args, {"group_dir": str(result.group_dir), "stopped": False, **result.summary},
          f"cross-validation: {result.group_dir}\n{summary_text(result.summary)}")
    return 0
