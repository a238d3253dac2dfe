"""Benchmark: an exported model's size and per-image time next to the Keras file's.

    python bench/exported_latency.py [--model MODEL.keras] [--repeats 25] [--json]

Exports the model (default: the bundled one) as LiteRT, ONNX and SavedModel into a temporary
folder and times one image with the stored recipe's views (4 flips when the recipe has TTA) in
one call: the app's Keras path (`LoadedModel.classify`), the LiteRT interpreter (2 threads),
onnxruntime on the CPU (2 threads; needs the `[export]` extra) and the SavedModel's serving
function. Medians over `--repeats` calls after a warm-up, one runtime after the other: taking
turns call by call was tried and doubled LiteRT's time (the other runtimes' threads and caches
get in its way), so the figures need a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _common import print_table, timed_ms


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
    rows: list[dict[str, Any]] = [{"format": "keras (the app)", "mb": size_mb(loaded.path),
                                   "ms": timed_ms(lambda: loaded.classify(image), args.repeats)}]
    with tempfile.TemporaryDirectory() as tmp:
        lite = export_model(loaded, "tflite", Path(tmp) / "m.tflite")
        interpreter = tf().lite.Interpreter(model_path=str(lite), num_threads=2)
        entry = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(entry["index"], views.shape)
        interpreter.allocate_tensors()

        def run_lite() -> None:
            interpreter.set_tensor(entry["index"], views)
            interpreter.invoke()

        rows.append({"format": "litert", "mb": size_mb(lite), "ms": timed_ms(run_lite,
                                                                          args.repeats)})
        import onnxruntime

        onnx = export_model(loaded, "onnx", Path(tmp) / "m.onnx")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 2  # as the LiteRT interpreter
        session = onnxruntime.InferenceSession(str(onnx), options,
                                               providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: views}
        rows.append({"format": "onnx", "mb": size_mb(onnx),
                     "ms": timed_ms(lambda: session.run(None, feed), args.repeats)})
        saved = export_model(loaded, "savedmodel", Path(tmp) / "saved")
        module = tf().saved_model.load(str(saved))
        rows.append({"format": "savedmodel", "mb": size_mb(saved),
                     "ms": timed_ms(lambda: module.serve(views), args.repeats)})
    if args.json:
        print(json.dumps({"model": loaded.path.name, "views": len(views), "rows": rows}))
    else:
        print(f"model {loaded.path.name}, {len(views)} view(s) per image")
        print_table(rows, [("format", "format", "s"), ("mb", "MB", ".1f"),
                           ("ms", "ms per image", ".1f")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
