"""Benchmark: an exported model's size and per-image time next to the Keras file's.

    python bench/exported_latency.py [--model MODEL.keras] [--repeats 25] [--json]

Exports the model (default: the bundled one) as LiteRT, ONNX and SavedModel into a temporary
folder and times one image with the stored recipe's views (4 flips when the recipe has TTA) in
one call: the app's Keras path (`LoadedModel.classify`), the LiteRT interpreter (2 threads),
onnxruntime on the CPU (2 threads; needs the `[export]` extra) and the SavedModel's serving
function. The runtimes take turns, one call each per round, so a busy machine slows them all
alike; medians over `--repeats` rounds after two warm-up calls each.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import median, print_table


def timed(fns: dict[str, Any], repeats: int) -> dict[str, float]:
    """Median milliseconds of each `fn()`, the functions called in turn, after warm-ups."""
    for fn in fns.values():
        fn()
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: median(t) for name, t in times.items()}


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from core.backend import tf
    from core.export_model import export_model
    from core.inference import resolve_model

    loaded = resolve_model(args.model)
    size = loaded.info.image_size
    image = np.random.default_rng(0).integers(0, 256, (1, size, size, 3)).astype(np.uint8)
    views = np.concatenate([image, image[:, :, ::-1], image[:, ::-1], image[:, ::-1, ::-1]]
                           if loaded.info.tta else [image]).astype(np.float32)
    sizes = {"keras (the app)": size_mb(loaded.path)}
    fns: dict[str, Any] = {"keras (the app)": lambda: loaded.classify(image)}
    with tempfile.TemporaryDirectory() as tmp:
        lite = export_model(loaded, "tflite", Path(tmp) / "m.tflite")
        interpreter = tf().lite.Interpreter(model_path=str(lite), num_threads=2)
        entry = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(entry["index"], views.shape)
        interpreter.allocate_tensors()

        def run_lite() -> None:
            interpreter.set_tensor(entry["index"], views)
            interpreter.invoke()

        sizes["litert"], fns["litert"] = size_mb(lite), run_lite
        import onnxruntime

        onnx = export_model(loaded, "onnx", Path(tmp) / "m.onnx")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 2  # as the LiteRT interpreter
        session = onnxruntime.InferenceSession(str(onnx), options,
                                               providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: views}
        sizes["onnx"], fns["onnx"] = size_mb(onnx), lambda: session.run(None, feed)
        saved = export_model(loaded, "savedmodel", Path(tmp) / "saved")
        module = tf().saved_model.load(str(saved))
        sizes["savedmodel"], fns["savedmodel"] = size_mb(saved), lambda: module.serve(views)
        ms = timed(fns, args.repeats)
    rows = [{"format": name, "mb": sizes[name], "ms": ms[name]} for name in fns]
    if args.json:
        print(json.dumps({"model": loaded.path.name, "views": len(views), "rows": rows}))
    else:
        print(f"model {loaded.path.name}, {len(views)} view(s) per image")
        print_table(rows, [("format", "format", "s"), ("mb", "MB", ".1f"),
                           ("ms", "ms per image", ".1f")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
