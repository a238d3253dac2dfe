"""Benchmark: seconds from process start to a painted, interactive main window (offscreen).

    python bench/startup.py [--repeats 5] [--as-app] [--json]

Each repeat starts a fresh `python -c CHILD` with QT_QPA_PLATFORM=offscreen and a temporary
SKIN_LESION_HOME. The child notes `time.perf_counter()` on its first line, creates the
QApplication and `gui.main_window.MainWindow`, shows it, waits for the window's first paint
event and then for a 0-ms timer (the event loop is running, so the window takes input), and
prints the elapsed time and whether `tensorflow` is in `sys.modules` at that moment.

`in_process_s` counts from the child's first line; `from_spawn_s` from the parent's spawn
(perf_counter is CLOCK_MONOTONIC, shared by processes on Linux), so it includes the Python
interpreter start, reported on its own as `interpreter_s` (a child that does nothing).
`--as-app` also calls `window.start_background_loading()` right after `show()`, as
`gui.app.run_app` does (TensorFlow then imports in a worker thread while the window paints);
`tensorflow_imported_before_window` is then checked just before that call.
The ten modules with the largest cumulative import time come from one `-X importtime` run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from _common import ROOT, median, print_table, stats

CHILD = r"""
import time
T0 = time.perf_counter()
import json, sys
sys.path.insert(0, {root!r})
as_app = sys.argv[1] == "1"
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([sys.argv[0]])
T_QAPP = time.perf_counter()
from gui.main_window import MainWindow
T_IMPORT = time.perf_counter()
window = MainWindow()
T_BUILT = time.perf_counter()
window.show()
T_SHOWN = time.perf_counter()
tf_before_window = "tensorflow" in sys.modules
if as_app:
    window.start_background_loading()
out = {{}}

def ready(how):
    if out:
        return
    out.update(t_ready=time.perf_counter(), t0=T0, painted_by=how, t_qapp=T_QAPP,
               t_import=T_IMPORT, t_built=T_BUILT, t_shown=T_SHOWN,
               tensorflow_at_ready="tensorflow" in sys.modules,
               tensorflow_before_window=tf_before_window if as_app
               else "tensorflow" in sys.modules)
    app.quit()

class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and not out:
            QTimer.singleShot(0, lambda: ready("paint-event"))
        return False

first_paint = FirstPaint()
window.installEventFilter(first_paint)

def force_paint():  # fallback if the platform never sends a paint event
    window.grab()
    ready("grab")

QTimer.singleShot(10000, force_paint)
app.exec()
window.tasks.stop_all(60000)
print(json.dumps(out), flush=True)
"""

EMPTY_CHILD = "import time; print(time.perf_counter(), flush=True)"


def child_env(home: str) -> dict[str, str]:
    """The environment of a child: offscreen Qt and a temporary SKIN_LESION_HOME."""
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SKIN_LESION_HOME": home,
            "TF_CPP_MIN_LOG_LEVEL": "3"}


def one_start(as_app: bool) -> dict[str, Any]:
    """One fresh start of the window; figures in seconds."""
    with tempfile.TemporaryDirectory(prefix="bench-home-") as home:
        spawned = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)),
                               "1" if as_app else "0"], capture_output=True, text=True,
                              env=child_env(home), timeout=600, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"start-up child failed (exit {done.returncode}):\n"
                           + done.stderr[-3000:])
    out = json.loads(lines[-1])
    return {"in_process_s": out["t_ready"] - out["t0"], "from_spawn_s": out["t_ready"] - spawned,
            "tensorflow_before_window": out["tensorflow_before_window"],
            "tensorflow_at_ready": out["tensorflow_at_ready"], "painted_by": out["painted_by"],
            "phases": {"qapplication_s": out["t_qapp"] - out["t0"],
                       "import_gui_s": out["t_import"] - out["t_qapp"],
                       "build_window_s": out["t_built"] - out["t_import"],
                       "show_s": out["t_shown"] - out["t_built"],
                       "paint_to_ready_s": out["t_ready"] - out["t_shown"]}}


def interpreter_start() -> float:
    """Seconds from spawn to the first line of a Python child that does nothing."""
    spawned = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", EMPTY_CHILD], capture_output=True, text=True,
                          check=True)
    return float(done.stdout.strip()) - spawned


def import_times(top: int = 10) -> list[dict[str, Any]]:
    """The `top` modules by cumulative import time in one `-X importtime` start-up."""
    with tempfile.TemporaryDirectory(prefix="bench-home-") as home:
        done = subprocess.run([sys.executable, "-X", "importtime", "-c",
                               CHILD.format(root=str(ROOT)), "0"], capture_output=True,
                              text=True, env=child_env(home), timeout=600, check=False)
    rows: list[dict[str, Any]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        parts = line.split(":", 1)[1].split("|")
        if len(parts) != 3:
            continue
        name = parts[2].rstrip()
        rows.append({"module": name.strip(), "depth": (len(name) - len(name.lstrip())) // 2,
                     "self_s": int(parts[0]) / 1e6, "cumulative_s": int(parts[1]) / 1e6})
    rows.sort(key=lambda r: r["cumulative_s"], reverse=True)
    return rows[:top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--as-app", action="store_true",
                        help="also start the background TensorFlow load, as run_app does")
    parser.add_argument("--no-importtime", action="store_true", help="skip the -X importtime run")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    starts, empty = [], []
    for _ in range(args.repeats):
        empty.append(interpreter_start())
        starts.append(one_start(args.as_app))
    result: dict[str, Any] = {
        "repeats": args.repeats, "as_app": args.as_app,
        "in_process_s": stats([s["in_process_s"] for s in starts]),
        "from_spawn_s": stats([s["from_spawn_s"] for s in starts]),
        "interpreter_s": stats(empty),
        "tensorflow_imported_before_window": any(s["tensorflow_before_window"] for s in starts),
        "tensorflow_in_modules_when_ready": any(s["tensorflow_at_ready"] for s in starts),
        "painted_by": sorted({s["painted_by"] for s in starts}),
        "phases_median_s": {k: median(s["phases"][k] for s in starts)
                            for k in starts[0]["phases"]},
    }
    result["app_share_s"] = (result["from_spawn_s"]["median"]
                             - result["interpreter_s"]["median"])
    if not args.no_importtime:
        result["top_imports"] = import_times()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"start-up to a painted, interactive window ({args.repeats} fresh processes, "
          f"offscreen{', with background TF load' if args.as_app else ''})")
    print_table([{"what": name, **result[key]} for name, key in
                 (("from spawn", "from_spawn_s"), ("in process", "in_process_s"),
                  ("interpreter only", "interpreter_s"))],
                [("what", "seconds", ""), ("median", "median", ".3f"), ("min", "min", ".3f"),
                 ("max", "max", ".3f")])
    print(f"app's own share (median from spawn - interpreter): {result['app_share_s']:.3f} s")
    print("phases (median s): " + ", ".join(f"{k.removesuffix('_s')} {v:.3f}"
                                             for k, v in result["phases_median_s"].items()))
    print(f"tensorflow_imported_before_window: {result['tensorflow_imported_before_window']}"
          f"   (painted by: {', '.join(result['painted_by'])})")
    if "top_imports" in result:
        print("\ntop modules by cumulative import time (one -X importtime run):")
        print_table(result["top_imports"],
                    [("module", "module", ""), ("depth", "depth", "d"),
                     ("cumulative_s", "cumulative s", ".3f"), ("self_s", "self s", ".3f")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
