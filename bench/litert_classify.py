"""Benchmark: classifying through the LiteRT twin against the Keras path.

    python bench/litert_classify.py [--images N] [--repeats 3] [--json]

Measures, for the bundled model with its stored recipe (4 flip views, temperature, gate):

* `predict IMAGE` in a fresh process (`main.py predict --runtime litert|keras`): wall time
  and peak memory (the child's ru_maxrss, from `os.wait4`);
* a classification-only process on N images (`predict --runtime litert` on a folder): wall
  time and peak memory;
* batch throughput in this process (`core.inference.predict_files`, decoding included),
  with the recipe and with one view (`tta=False`), for both runtimes;
* launch to first answer: a fresh app process (offscreen Qt) whose user drops an image the
  moment the window has painted; seconds from spawn until the answer is shown.

Images: the first N of ../shared/datasets/ph2 (else synthetic ones). Nothing is written
outside a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, median, print_table

SHARED_PH2 = ROOT.parent / "shared" / "datasets" / "ph2"

APP_CHILD = r"""
import sys, time
sys.path.insert(0, {root!r})
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
from gui.main_window import MainWindow
window = MainWindow()

class Painted(QObject):
    done = False
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and not self.done:
            self.done = True
            QTimer.singleShot(0, drop)
        return False

def drop():
    window.start_background_loading()
    window.classify_files([{image!r}])
    poll()

def poll():
    if window.classify_view.result_label.text():
        print(time.perf_counter(), window._classify_runtime,
              'tensorflow' in sys.modules, flush=True)
        app.quit()
    else:
        QTimer.singleShot(2, poll)

painted = Painted()
window.installEventFilter(painted)
window.show()
app.exec()
"""


def images_for(n: int, workdir: Path) -> list[Path]:
    """The first `n` PH2 images, else `n` synthetic ones."""
    found = sorted(p for p in SHARED_PH2.rglob("*") if p.suffix.lower() in (".jpg", ".png",
                                                                             ".bmp"))
    if len(found) >= n:
        return found[:n]
    from tests.synthetic import CLASS_COLOURS, make_image

    colours = list(CLASS_COLOURS.values())
    return [make_image(workdir / f"img{i:04d}.png", colours[i % 7], (200, 150), seed=i)
            for i in range(n)]


def child(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak MB, stdout) of one fresh `python ARGS` process."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"child failed ({proc.returncode}): {' '.join(args)}")
    return wall, usage.ru_maxrss / 1024, out


def throughput(runtime: str, files: list[Path], tta: bool, repeats: int) -> float:
    """Images per second of `predict_files` (decode + recipe) with `runtime`."""
    from core.inference import predict_files, resolve_model

    model = resolve_model(None, runtime)
    predict_files(model, files[:4], tta=tta)  # warm: traced / allocated
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict_files(model, files, tta=tta)
        times.append(time.perf_counter() - start)
    return len(files) / median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {"cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-litert-") as tmp:
        env = {**os.environ, "SKIN_LESION_HOME": tmp, "QT_QPA_PLATFORM": "offscreen",
               "TF_CPP_MIN_LOG_LEVEL": "3"}
        os.environ["SKIN_LESION_HOME"] = tmp
        files = images_for(args.images, Path(tmp))
        rows = []
        for runtime in ("litert", "keras"):
            runs = [child(["main.py", "predict", "--runtime", runtime, str(files[0])], env)
                    for _ in range(args.repeats)]
            rows.append([f"predict 1 image, {runtime}", f"{median([r[0] for r in runs]):.2f} s",
                         f"{max(r[1] for r in runs):.0f} MB"])
            results[f"predict_one_{runtime}"] = {"wall_s": median([r[0] for r in runs]),
                                                 "peak_mb": max(r[1] for r in runs)}
        wall, peak, _ = child(["main.py", "predict", "--runtime", "litert",
                               *map(str, files)], env)
        rows.append([f"predict {len(files)} images, litert", f"{wall:.2f} s", f"{peak:.0f} MB"])
        results["predict_many_litert"] = {"images": len(files), "wall_s": wall, "peak_mb": peak}
        for runtime in ("litert", "keras"):
            for tta in (True, False):
                rate = throughput(runtime, files, tta, args.repeats)
                label = "recipe (4 views)" if tta else "1 view"
                rows.append([f"batch, {runtime}, {label}", f"{rate:.0f} images/s", ""])
                results[f"batch_{runtime}_{'tta' if tta else 'one_view'}_per_s"] = rate
        firsts = []
        for _ in range(args.repeats):
            code = APP_CHILD.format(root=str(ROOT), image=str(files[0]))
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, text=True,
                                 capture_output=True, timeout=300)
            stamp, runtime, tf_loaded = out.stdout.split()
            firsts.append(float(stamp) - start)
        rows.append(["launch to first answer (app)", f"{median(firsts):.2f} s",
                     f"{runtime}, TensorFlow imported: {tf_loaded}"])
        results["launch_to_first_answer_s"] = median(firsts)
        results["launch_runtime"], results["launch_tensorflow_imported"] = runtime, tf_loaded
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table([dict(zip(("what", "value", "note"), row, strict=True)) for row in rows],
                    [("what", "what", ""), ("value", "time or rate", ""),
                     ("note", "memory / note", "")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
