"""Benchmark: the Train view's per-epoch curve update, as the GUI thread pays for it.

    QT_QPA_PLATFORM=offscreen python bench/curve_redraw.py [--epochs 11] [--repeats 4] [--json]

A `TrainingCurves` widget, 600x400 px, shown offscreen, for a 50-epoch run; each time is one
`add_epoch` plus the event processing that paints it, median over epochs 2..N (epoch 1 draws
the legends and the axes once). *blit* is the app's path (only the lines are redrawn over a
saved background); *full* forces a whole-figure draw each epoch, the previous behaviour.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from _common import median, print_table

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def one_run(app: object, mode: str, epochs: int) -> float:
    """Median milliseconds per epoch update over epochs 2..`epochs`."""
    from gui.training_curves import TrainingCurves

    curves = TrainingCurves()
    curves.resize(600, 400)
    curves.show()
    app.processEvents()  # type: ignore[attr-defined]
    curves.start_run(50)
    times = []
    for epoch in range(1, epochs + 1):
        logs = {"loss": 1.5 / epoch, "val_loss": 1.6 / epoch, "accuracy": 0.5 + epoch / 40,
                "val_accuracy": 0.45 + epoch / 40, "balanced_accuracy": 0.4 + epoch / 50,
                "val_balanced_accuracy": 0.38 + epoch / 50}
        start = time.perf_counter()
        curves.add_epoch(epoch, logs)
        if mode == "full":
            curves.draw()
        app.processEvents()  # type: ignore[attr-defined]
        times.append((time.perf_counter() - start) * 1000)
    curves.close()
    return median(times[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=11)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    results: dict[str, list[float]] = {"blit": [], "full": []}
    for _ in range(args.repeats):  # alternate, so background load hits both alike
        for mode in results:
            results[mode].append(round(one_run(app, mode, args.epochs), 1))
    rows = [{"mode": m, "runs": ", ".join(f"{v:g}" for v in values), "median": median(values)}
            for m, values in results.items()]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows, [("mode", "mode", "s"), ("runs", "ms per epoch, each run", "s"),
                           ("median", "median ms", ".1f")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
