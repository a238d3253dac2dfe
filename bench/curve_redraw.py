"""Benchmark: the Train view's per-epoch curve update, and what the GUI thread pays for it.

    QT_QPA_PLATFORM=offscreen python bench/curve_redraw.py [--epochs 11] [--repeats 4] [--json]

A `TrainingCurves` widget, 600x400 px, shown offscreen, for a 50-epoch run. The painter
process (`gui.curve_painter`) draws the curves; per epoch this times *gui*: the GUI thread's
own work (`add_epoch`, then painting the image once it arrives) and *drawn*: from
`add_epoch` until the new image is on screen (the painter's drawing included), medians
over epochs 2..N of each run, then over runs. A 5 ms timer in the GUI thread measures its
*stall*: the longest lateness of any tick over the whole run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from _common import median, print_table

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TICK_MS = 5


def one_run(app: Any, epochs: int) -> dict[str, float]:
    """Median milliseconds per epoch (GUI-thread work, until drawn) and the longest stall."""
    from PySide6.QtCore import QEventLoop, Qt, QTimer

    from gui.training_curves import TrainingCurves

    curves = TrainingCurves()
    curves.resize(600, 400)
    curves.show()
    gui_ms: list[float] = []
    drawn_ms: list[float] = []
    last_tick, lateness = [time.perf_counter()], [0.0]

    def tick() -> None:
        now = time.perf_counter()
        lateness[0] = max(lateness[0], (now - last_tick[0]) * 1e3 - TICK_MS)
        last_tick[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(tick)

    def wait_for_image(count: int) -> None:
        loop = QEventLoop()
        poll = QTimer()
        poll.timeout.connect(lambda: loop.quit() if curves.drawings > count else None)
        poll.start(1)
        loop.exec()
        poll.stop()

    wait_for_image(0)  # the empty axes, once the painter process has started
    curves.start_run(50)
    wait_for_image(curves.drawings)
    last_tick[0] = time.perf_counter()
    timer.start(TICK_MS)
    for epoch in range(1, epochs + 1):
        logs = {"loss": 1.5 / epoch, "val_loss": 1.6 / epoch, "accuracy": 0.5 + epoch / 40,
                "val_accuracy": 0.45 + epoch / 40, "balanced_accuracy": 0.4 + epoch / 50,
                "val_balanced_accuracy": 0.38 + epoch / 50}
        count = curves.drawings
        start = time.perf_counter()
        curves.add_epoch(epoch, logs)
        own = time.perf_counter() - start
        wait_for_image(count)
        paint = time.perf_counter()
        curves.repaint()  # the paint the image's arrival asked for, timed
        own += time.perf_counter() - paint
        gui_ms.append(own * 1e3)
        drawn_ms.append((time.perf_counter() - start) * 1e3)
    timer.stop()
    curves.close()
    app.processEvents()
    return {"gui_ms": median(gui_ms[1:]), "drawn_ms": median(drawn_ms[1:]),
            "stall_ms": lateness[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=11)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    runs = [one_run(app, args.epochs) for _ in range(args.repeats)]
    rows = [{"figure": key, "runs": ", ".join(f"{r[key]:.1f}" for r in runs),
             "median": median(r[key] for r in runs)}
            for key in ("gui_ms", "drawn_ms", "stall_ms")]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows, [("figure", "figure", "s"), ("runs", "ms, each run", "s"),
                           ("median", "median ms", ".1f")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
