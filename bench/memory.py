"""Benchmark: peak resident memory of the app and of the heavy jobs, each in a fresh process.

    python bench/memory.py --data ../shared/datasets/ham10000 [--scenarios app,load,train,runs]
        [--load-size 128] [--runs 5] [--runs-images 500] [--child-process] [--repeats 5] [--json]

Scenarios (each repeat of each is a fresh subprocess with a temporary SKIN_LESION_HOME;
peak = `resource.getrusage(RUSAGE_SELF).ru_maxrss`, current = VmRSS from /proc/self/status):
  app    the offscreen MainWindow shown and its event loop run `--idle-seconds` (2) s, with
         TensorFlow not imported; then `window.start_background_loading()` until
         `window.startup_done` (the bundled model's LiteRT twin: TensorFlow stays unloaded
         since 2026-11-28), and one more second of event loop;
  load   `core.images.load_images` of the whole dataset at `--load-size` (128) px, cold cache;
  train  `core.training.train` of the CNN for 1 epoch at 32 px (`--train-balance`, the
         study's resample:500 by default);
  runs   `--runs` (5) consecutive short trainings in one process (CNN, 1 epoch, 32 px, no
         balancing, on a random `--runs-images` subset), each in a new thread as the app does,
         VmRSS after each run, to show whether memory grows from run to run. With
         `--child-process` the offscreen MainWindow starts the same runs from its Train view,
         each in a child process as the app trains by default (`core.child_process`): the
         VmRSS is the window's process's, which never imports TensorFlow; the largest
         child's peak is reported beside it.
Figures are medians over `--repeats`. Without `--data` the shared HAM10000 copy is used when
present, else a synthetic set (`--synthetic N` forces one with N images per class).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import (
    median,
    peak_rss_mib,
    print_table,
    resolve_data,
    run_child,
    spin_events,
    subset_dataset,
    vm_rss_mib,
)

SCENARIOS = ("app", "load", "train", "runs")


def child_app(args: argparse.Namespace) -> dict[str, Any]:
    """The app idle without TensorFlow, then with TensorFlow (and any bundled model) loaded."""
    from PySide6.QtWidgets import QApplication

    app = QApplication([sys.argv[0]])
    from gui.main_window import MainWindow

    window = MainWindow()
    window.show()

    spin_events(args.idle_seconds)
    out: dict[str, Any] = {"idle_peak_mib": peak_rss_mib(), "idle_rss_mib": vm_rss_mib(),
                           "tensorflow_loaded_when_idle": "tensorflow" in sys.modules}
    t0 = time.perf_counter()
    window.start_background_loading()
    spin_events(600, lambda: window.startup_done)
    out["backend_seconds"] = time.perf_counter() - t0
    spin_events(1.0)
    out.update(tf_peak_mib=peak_rss_mib(), tf_rss_mib=vm_rss_mib(),
               backend_ready=window.startup_done)
    window.tasks.stop_all(60000)
    app.processEvents()
    return out


def child_load(args: argparse.Namespace) -> dict[str, Any]:
    """Decode the whole dataset at `--load-size` px with an empty cache."""
    from core.dataset import load_dataset
    from core.images import load_images

    before = vm_rss_mib()
    t0 = time.perf_counter()
    images = load_images(load_dataset(args.data), args.load_size).images
    return {"seconds": time.perf_counter() - t0, "images": len(images),
            "array_mib": images.nbytes / 2**20, "start_rss_mib": before,
            "peak_mib": peak_rss_mib(), "rss_mib": vm_rss_mib()}


def child_train(args: argparse.Namespace) -> dict[str, Any]:
    """Train the study's CNN for one epoch at 32 px on the whole dataset."""
    from core.training import TrainConfig, train

    t0 = time.perf_counter()
    result = train(TrainConfig(data_dir=args.data, model="cnn", image_size=32, epochs=1,
                               balance=args.train_balance))
    return {"seconds": time.perf_counter() - t0, "train_images": result.metrics["train_images"],
            "peak_mib": peak_rss_mib(), "rss_mib": vm_rss_mib()}


def child_app_runs(args: argparse.Namespace) -> dict[str, Any]:
    """`--child-process`: the offscreen MainWindow trains `--runs` times from its Train view,
    each run in a child process as the app does; VmRSS of the window's process after each."""
    import resource

    from PySide6.QtWidgets import QApplication

    app = QApplication([sys.argv[0]])
    from gui.main_window import MainWindow

    window = MainWindow()
    window.show()
    view = window.train_view
    window.tabs.setCurrentWidget(view)
    view.set_dataset(args.data)
    view.settings.select(view.settings.model_box, "cnn")
    view.settings.size_spin.setValue(32)
    view.settings.epochs_spin.setValue(1)
    view.settings.select(view.settings.balance_box, "none")
    spin_events(1.0)
    before = vm_rss_mib()
    rss, peaks, seconds = [], [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        view.start_clicked()
        # the run, then what the window does after it (the first model becomes active)
        spin_events(1800, lambda: not view.is_running() and not window.tasks.running())
        last = view.log.toPlainText().splitlines()[-1]
        if "Run finished" not in last:
            raise RuntimeError(f"the run did not finish: {last}")
        seconds.append(time.perf_counter() - t0)
        spin_events(0.5)
        rss.append(vm_rss_mib())
        peaks.append(peak_rss_mib())
    out = {"after_import_rss_mib": before, "rss_after_each_mib": rss,
           "peak_after_each_mib": peaks, "seconds_each": seconds,
           "growth_mib": rss[-1] - rss[0],
           "growth_per_run_mib": (rss[-1] - rss[0]) / max(1, len(rss) - 1),
           "tensorflow_imported": "tensorflow" in sys.modules,
           "child_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
    window.close()
    app.processEvents()
    return out


def child_runs(args: argparse.Namespace) -> dict[str, Any]:
    """Several short trainings in one process, each in a new thread; VmRSS after each
    (`--child-process`: `child_app_runs`)."""
    if args.child_process:
        return child_app_runs(args)
    from core.backend import keras
    from core.training import TrainConfig, train

    keras()
    after_import = vm_rss_mib()
    rss, peaks, seconds = [], [], []
    for _ in range(args.runs):
        config = TrainConfig(data_dir=args.data, model="cnn", image_size=32, epochs=1,
                             balance="none")
        errors: list[BaseException] = []

        def work(config: TrainConfig = config, errors: list[BaseException] = errors) -> None:
            try:
                train(config)
            except BaseException as exc:  # reported by the parent
                errors.append(exc)

        t0 = time.perf_counter()
        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        if errors:
            raise errors[0]
        seconds.append(time.perf_counter() - t0)
        rss.append(vm_rss_mib())
        peaks.append(peak_rss_mib())
    return {"after_import_rss_mib": after_import, "rss_after_each_mib": rss,
            "peak_after_each_mib": peaks, "seconds_each": seconds,
            "growth_mib": rss[-1] - rss[0], "growth_per_run_mib": (rss[-1] - rss[0])
            / max(1, len(rss) - 1), "tensorflow_imported": True, "child_peak_mib": 0.0}


CHILDREN = {"app": child_app, "load": child_load, "train": child_train, "runs": child_runs}


def summarize(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repeats of one scenario's figures (lists element-wise)."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, bool):
            out[key] = any(r[key] for r in runs)
        elif isinstance(value, list):
            out[key] = [median(r[key][i] for r in runs) for i in range(len(value))]
        elif isinstance(value, int | float):
            out[key] = median(r[key] for r in runs)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset folder (default: shared HAM10000 or synthetic)")
    parser.add_argument("--synthetic", type=int, metavar="N",
                        help="use a synthetic HAM10000-layout set with N images per class")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated, from {', '.join(SCENARIOS)}")
    parser.add_argument("--idle-seconds", type=float, default=2.0)
    parser.add_argument("--load-size", type=int, default=128)
    parser.add_argument("--train-balance", default="resample:500",
                        help="balancing of the train scenario (the study's by default)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--runs-images", type=int, default=500, help="0: the whole dataset")
    parser.add_argument("--child-process", action="store_true",
                        help="runs: train each run in a child process, as the app does, and "
                        "measure the parent")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--child", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args)), flush=True)
        return 0
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        data, described = resolve_data(args.data, args.synthetic, Path(tmp))
        runs_data = subset_dataset(data, args.runs_images or None, Path(tmp) / "subset")
        for name in scenarios:
            argv = [str(Path(__file__).resolve()), "--child", name,
                    "--data", str(runs_data if name == "runs" else data),
                    "--idle-seconds", str(args.idle_seconds), "--load-size",
                    str(args.load_size), "--runs", str(args.runs),
                    "--train-balance", args.train_balance]
            if args.child_process:
                argv.append("--child-process")
            per_repeat = []
            for i in range(args.repeats):
                home = Path(tmp) / f"home-{name}-{i}"
                home.mkdir()
                per_repeat.append(run_child(argv, env={"SKIN_LESION_HOME": str(home),
                                                       "QT_QPA_PLATFORM": "offscreen",
                                                       "TF_CPP_MIN_LOG_LEVEL": "3"}))
            results[name] = summarize(name, per_repeat)
    result = {"data": described, "repeats": args.repeats, **results}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"peak resident memory (MiB), fresh process per scenario, median of {args.repeats}; "
          f"{described}")
    rows = []
    if "app" in results:
        a = results["app"]
        rows += [{"scenario": "app idle, TF not loaded", "peak": a["idle_peak_mib"],
                  "rss": a["idle_rss_mib"], "note": "tensorflow imported: "
                  f"{a['tensorflow_loaded_when_idle']}"},
                 {"scenario": "app, bundled model ready", "peak": a["tf_peak_mib"],
                  "rss": a["tf_rss_mib"],
                  "note": f"start-up load done in {a['backend_seconds']:.1f} s "
                  f"({'ok' if a['backend_ready'] else 'NOT ready'})"}]
    if "load" in results:
        r = results["load"]
        rows.append({"scenario": f"load_images at {args.load_size} px", "peak": r["peak_mib"],
                     "rss": r["rss_mib"], "note": f"{r['images']:.0f} images, array "
                     f"{r['array_mib']:.0f} MiB, {r['seconds']:.1f} s"})
    if "train" in results:
        r = results["train"]
        rows.append({"scenario": "train CNN 1 epoch 32 px", "peak": r["peak_mib"],
                     "rss": r["rss_mib"], "note": f"{r['train_images']:.0f} training images, "
                     f"{r['seconds']:.1f} s"})
    if rows:
        print_table(rows, [("scenario", "scenario", ""), ("peak", "peak MiB", ".0f"),
                           ("rss", "RSS after", ".0f"), ("note", "note", "")])
    if "runs" in results:
        r = results["runs"]
        if args.child_process:
            print(f"\n{args.runs} consecutive trainings, each in a child process; the "
                  f"parent's memory (before run 1: {r['after_import_rss_mib']:.0f} MiB; "
                  f"TensorFlow imported in the parent: {r['tensorflow_imported']}; largest "
                  f"child's peak: {r['child_peak_mib']:.0f} MiB):")
        else:
            print(f"\n{args.runs} consecutive trainings in one process (after TF import: "
                  f"{r['after_import_rss_mib']:.0f} MiB):")
        print_table([{"run": i + 1, "rss": v, "peak": p, "s": s} for i, (v, p, s) in
                     enumerate(zip(r["rss_after_each_mib"], r["peak_after_each_mib"],
                                   r["seconds_each"], strict=True))],
                    [("run", "run", "d"), ("rss", "VmRSS after MiB", ".0f"),
                     ("peak", "peak so far MiB", ".0f"), ("s", "seconds", ".1f")])
        print(f"growth from run 1 to run {args.runs}: {r['growth_mib']:.0f} MiB "
              f"({r['growth_per_run_mib']:.1f} MiB per run)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.exit(main())
