"""Benchmark: how long the GUI thread stalls while the real app loads TensorFlow and trains.

    python bench/gui_stall.py [--data DIR | --synthetic 40] [--model cnn] [--epochs 1]
        [--in-process] [--json]

Each repeat is a fresh process: an offscreen QApplication and `gui.main_window.MainWindow`,
with a precise QTimer firing every `--tick-ms` (10) ms in the GUI thread; its lateness is the
actual interval minus the nominal one. First the app's start-up load runs
(`window.start_background_loading()` until `startup_done`: the bundled model through its
LiteRT twin, without TensorFlow; `--no-preload` skips it), then the Train tab is opened (phase
train-tab: its first show; the curves' painter process starts), then a real training through the
Train view (`set_dataset`, model and epochs in its settings, `start_clicked()`), until
`is_running()` is False, or `--seconds` pass, then `stop_clicked()` and wait. As the app
does by default, the training worker starts a child process that imports TensorFlow and
trains (`core.child_process`); `--in-process` measures the old way instead
(`SKIN_LESION_TRAIN_IN_PROCESS=1`: the worker thread imports TensorFlow and trains).

Reported: the longest stall, the 99th percentile of lateness, the count of stalls over
100 ms, and the same per phase (starting, importing (TensorFlow), loading, building,
features, training, evaluating, saving, idle, or another task's name such as backend or
load-model), timed from the workers'
status messages; a tick interval is charged to the phase that covers most of it.
Figures are medians over `--repeats`.
Without `--data` a synthetic HAM10000-layout set is made (`--synthetic`, 40 per class).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import median, percentile, print_table, resolve_data, run_child

STALL_MS = 100.0
PHASES = (  # (substring of a training worker's status line, phase that starts there)
    ("Loading TensorFlow", "importing"), ("reading dataset", "loading"),
    ("decoding", "loading"), ("building", "building"),
    ("backbone", "features"), ("training on", "training"), ("evaluating", "evaluating"),
    ("saved run", "saving"),
)


def phase_of(line: str) -> str | None:
    """The phase a training status line starts, or None if it starts none."""
    for needle, phase in PHASES:
        if needle in line:
            return phase
    return None


def phase_for(start: float, end: float, events: list[tuple[float, str]]) -> str:
    """The phase in effect for the largest part of [start, end] (`events`: sorted starts)."""
    best, best_overlap = events[0][1], -1.0
    for i, (t, phase) in enumerate(events):
        t_next = events[i + 1][0] if i + 1 < len(events) else float("inf")
        overlap = min(end, t_next) - max(start, t)
        if overlap > best_overlap:
            best, best_overlap = phase, overlap
    return best


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Run one measured session in this process (offscreen) and return its figures.

    Phases are timed in the worker threads (direct connections to the task's status
    signal), so a stall is charged to what the worker was doing while the GUI thread waited,
    not to the log line the GUI thread could only show afterwards.
    """
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication([sys.argv[0]])
    from gui.main_window import MainWindow
    from gui.tasks import Task

    window = MainWindow()
    window.show()
    t_start = time.perf_counter()
    events: list[tuple[float, str]] = [(0.0, "idle")]  # appended from several threads

    def mark(phase: str) -> None:
        events.append((time.perf_counter() - t_start, phase))

    original_run = window.tasks.run

    def instrumented_run(task: Task) -> None:
        is_train = task.name == "train"

        def on_status(message: str) -> None:
            phase = phase_of(message) if is_train else None
            if phase:
                mark(phase)

        direct = Qt.ConnectionType.DirectConnection
        task.worker.status.connect(on_status, direct)
        task.worker.done.connect(lambda: mark("idle"), direct)
        mark("starting" if is_train else task.name)  # other tasks: their name, e.g. backend
        original_run(task)

    window.tasks.run = instrumented_run  # type: ignore[method-assign]

    tick_ms = args.tick_ms
    ticks: list[tuple[float, float]] = []  # (previous tick, this tick), seconds since start
    last = [0.0]

    def tick() -> None:
        now = time.perf_counter() - t_start
        ticks.append((last[0], now))
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(tick_ms)
    timer.timeout.connect(tick)

    view = window.train_view
    view.set_dataset(args.data)
    view.settings.select(view.settings.model_box, args.model)
    if args.size:
        view.settings.size_spin.setValue(args.size)
    view.settings.epochs_spin.setValue(args.epochs)
    if args.balance:
        mode, _, per_class = args.balance.partition(":")
        view.settings.select(view.settings.balance_box, mode)
        if per_class:
            view.settings.per_class_spin.setValue(int(per_class))
    if args.weights:
        view.settings.weights_edit.setText(args.weights)

    deadline = time.monotonic() + args.seconds
    state = {"tab": False, "started": False, "stopping": False}

    def poll() -> None:
        if not state["started"]:
            if state["tab"]:  # one poll after the tab showed, as a user clicks Start
                state["started"] = True
                view.start_clicked()
            elif window.startup_done or args.no_preload:
                state["tab"] = True  # a user opens the Train tab first: its curves appear
                mark("train-tab")
                window.tabs.setCurrentWidget(view)
            elif time.monotonic() > deadline:
                app.quit()
            return
        if not view.is_running():
            app.quit()
        elif time.monotonic() > deadline and not state["stopping"]:
            state["stopping"] = True
            view.stop_clicked()

    poller = QTimer()
    poller.setInterval(50)
    poller.timeout.connect(poll)

    def begin() -> None:
        last[0] = time.perf_counter() - t_start
        timer.start()
        poller.start()
        if not args.no_preload:
            window.start_background_loading()

    QTimer.singleShot(0, begin)
    app.exec()
    seconds = time.perf_counter() - t_start
    timer.stop()
    window.tasks.stop_all(120000)
    events.sort()
    samples = [(phase_for(a, b, events), max(0.0, (b - a) * 1e3 - tick_ms)) for a, b in ticks]
    lateness = [ms for _, ms in samples]
    per_phase: dict[str, dict[str, float]] = {}
    for phase in dict.fromkeys(p for p, _ in samples):
        values = [ms for p, ms in samples if p == phase]
        per_phase[phase] = {"ticks": len(values), "max_ms": max(values),
                            "p99_ms": percentile(values, 99),
                            "stalls_over_100ms": sum(v > STALL_MS for v in values)}
    timeline = [(round(t, 2), p) for i, (t, p) in enumerate(events)
                if i == 0 or p != events[i - 1][1]]
    return {"seconds": seconds, "ticks": len(lateness), "max_ms": max(lateness, default=0.0),
            "p99_ms": percentile(lateness, 99),
            "stalls_over_100ms": sum(v > STALL_MS for v in lateness),
            "stopped_by_limit": state["stopping"], "per_phase": per_phase,
            "timeline": timeline, "finished": "Run finished" in view.log.toPlainText()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset folder (default: a synthetic set)")
    parser.add_argument("--synthetic", type=int, metavar="N", default=None,
                        help="images per class of the synthetic set (default 40)")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--size", type=int, help="image size (default: the model's)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--balance", help="e.g. none, class-weights, resample:500 (default: "
                        "the Train view's, resample:500)")
    parser.add_argument("--weights", help="transfer models: ImageNet weights file")
    parser.add_argument("--seconds", type=float, default=600.0,
                        help="stop the training (Stop button) after this long")
    parser.add_argument("--tick-ms", type=int, default=10)
    parser.add_argument("--no-preload", action="store_true",
                        help="do not load TensorFlow in the background before training")
    parser.add_argument("--in-process", action="store_true",
                        help="train in the GUI process's worker thread, not a child process")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)), flush=True)
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-stall-") as tmp:
        data, described = resolve_data(args.data, args.synthetic, Path(tmp), 40,
                                       prefer_shared=False)
        argv = [str(Path(__file__).resolve()), "--child", "--data", str(data),
                "--model", args.model, "--epochs", str(args.epochs),
                "--seconds", str(args.seconds), "--tick-ms", str(args.tick_ms)]
        for flag, value in (("--size", args.size), ("--balance", args.balance),
                            ("--weights", args.weights)):
            if value:
                argv += [flag, str(value)]
        if args.no_preload:
            argv.append("--no-preload")
        runs = []
        for i in range(args.repeats):
            home = Path(tmp) / f"home-{i}"
            home.mkdir()
            runs.append(run_child(argv, env={"QT_QPA_PLATFORM": "offscreen",
                                             "SKIN_LESION_HOME": str(home),
                                             "TF_CPP_MIN_LOG_LEVEL": "3",
                                             "SKIN_LESION_TRAIN_IN_PROCESS":
                                                 "1" if args.in_process else "0"},
                                  timeout=args.seconds + 900))
    phases = list(dict.fromkeys(p for r in runs for p in r["per_phase"]))
    result: dict[str, Any] = {
        "data": described, "model": args.model, "epochs": args.epochs,
        "repeats": args.repeats, "preload": not args.no_preload, "tick_ms": args.tick_ms,
        "training": "in the GUI process" if args.in_process else "in a child process",
        "seconds": median(r["seconds"] for r in runs),
        "max_stall_ms": median(r["max_ms"] for r in runs),
        "p99_ms": median(r["p99_ms"] for r in runs),
        "stalls_over_100ms": median(r["stalls_over_100ms"] for r in runs),
        "finished_runs": sum(bool(r["finished"]) for r in runs),
        "stopped_by_limit": sum(bool(r["stopped_by_limit"]) for r in runs),
        "per_phase": {p: {k: median(r["per_phase"][p][k] for r in runs if p in r["per_phase"])
                          for k in ("ticks", "max_ms", "p99_ms", "stalls_over_100ms")}
                      for p in phases},
        "timeline_first_run": runs[0]["timeline"],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"GUI-thread stalls with a {args.tick_ms} ms timer: {args.model}, {args.epochs} "
          f"epoch(s) on {described}, training {result['training']}; median of "
          f"{args.repeats} run(s), "
          f"{result['seconds']:.1f} s each; finished {result['finished_runs']}/{args.repeats}")
    rows = [{"phase": "all", "ticks": sum(r["ticks"] for r in runs) / len(runs),
             "max_ms": result["max_stall_ms"], "p99_ms": result["p99_ms"],
             "stalls_over_100ms": result["stalls_over_100ms"]}]
    rows += [{"phase": p, **v} for p, v in result["per_phase"].items()]
    print_table(rows, [("phase", "phase", ""), ("ticks", "ticks", ".0f"),
                       ("max_ms", "max ms", ".1f"), ("p99_ms", "p99 ms", ".1f"),
                       ("stalls_over_100ms", "stalls >100 ms", ".0f")])
    print("phase start times (s, first run): "
          + ", ".join(f"{p} {t}" for t, p in result["timeline_first_run"]))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.exit(main())
