"""Take a model out of the app: a TensorFlow SavedModel, a LiteRT (.tflite) or an ONNX file, each
with a sidecar JSON that says how to use it.

Keras' own `model.export` writes all three (ONNX through tf2onnx, from the `[export]` extra).
The exported model takes float32 RGB pixel values 0-255 of the crop policy's square at
`image_size` (scaling happens inside); the sidecar holds the classes in output order, the crop
policy, the stored inference recipe (flip TTA, temperature, class bias, which the caller
applies to the exported probabilities), the gate's settings (its arrays stay in the .keras
file) and the model card.
"""

from __future__ import annotations

import importlib
import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core import paths
from core.classes import full_name
from core.errors import ModelError
from core.model_io import LoadedModel

FORMATS = {"savedmodel": "tf_saved_model", "tflite": "litert", "onnx": "onnx"}
SUFFIXES = {"savedmodel": "", "tflite": ".tflite", "onnx": ".onnx"}  # "": a folder
RUNTIMES = {"savedmodel": "tf.saved_model.load(path).serve(images)",
            "tflite": "the LiteRT (TensorFlow Lite) interpreter",
            "onnx": "onnxruntime.InferenceSession(path).run(None, {input_name: images})"}
# optional modules a format needs: to write it, and to run it in run_exported
_NEEDS = {"onnx": (("tf2onnx", "onnx"), ("onnxruntime",))}
EXTRA_HINT = "pip install skin-lesion-classifier[export]"


def _require(fmt: str, purpose: int) -> None:
    """Raise a ModelError naming the extra when an optional module for `fmt` is missing."""
    for name in _NEEDS.get(fmt, ((), ()))[purpose]:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            action = "exporting as" if purpose == 0 else "running"
            raise ModelError(f"{action} {fmt} needs the {name} package, which is not "
                             f"installed ({exc}): {EXTRA_HINT}") from exc


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def sidecar_path(out: Path, fmt: str) -> Path:
    """Where the sidecar JSON goes: inside a SavedModel folder, else beside the file."""
    return out / "skin_lesion.json" if fmt == "savedmodel" else out.with_name(out.name + ".json")


def sidecar(loaded: LoadedModel, fmt: str) -> dict[str, Any]:
    """What a user of the exported model needs besides the weights."""
    info = loaded.info
    return {
        "format": fmt,
        "runtime": RUNTIMES[fmt],
        "classes": [{"code": c, "name": full_name(c)} for c in info.classes],
        "input": {"shape": [None, info.image_size, info.image_size, 3], "dtype": "float32",
                  "values": "RGB pixel values 0-255; scaling happens inside the model",
                  "crop": info.crop, "image_size": info.image_size},
        "recipe": {"tta_flips": info.tta, "temperature": info.temperature,
                   "class_bias": info.class_bias,
                   "how": "average the probabilities of the image and its horizontal, "
                          "vertical and double flips when tta_flips is true, then "
                          "softmax((log p + class_bias) / temperature)"},
        "out_of_distribution_gate": (
            {"settings": info.domain, "note": "the gate's arrays are not exported: use the "
             ".keras file in this app to refuse images that are not skin lesions"}
            if info.domain else None),
        "architecture": info.architecture, "trained_on": info.trained_on,
        "metrics": info.metrics, "card": info.card,
        "notice": "Research software, not a medical device.",
    }


def export_model(loaded: LoadedModel, fmt: str, out: str | Path,
                 status: Callable[[str], None] | None = None) -> Path:
    """Write `loaded` as `fmt` ("savedmodel", "tflite" or "onnx") to `out`, with its sidecar."""
    if fmt not in FORMATS:
        raise ModelError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    _require(fmt, 0)
    out = Path(out)
    say = status or (lambda _m: None)
    size = loaded.info.image_size
    loaded.model(np.zeros((1, size, size, 3), np.float32), training=False)  # built and traced
    # written beside the target and moved into place: a failed export leaves nothing behind
    tmp = out.with_name(f".{out.name}.partial{out.suffix}")
    _remove(tmp)
    out.parent.mkdir(parents=True, exist_ok=True)
    say(f"exporting {loaded.path.name} as {fmt}")
    try:
        with warnings.catch_warnings():
            # Keras' tf2onnx patch for numpy 2 probes np.object, which warns; nothing to act on
            warnings.simplefilter("ignore", FutureWarning)
            loaded.model.export(str(tmp), format=FORMATS[fmt], verbose=False)
    except Exception as exc:  # converters raise many types
        _remove(tmp)
        raise ModelError(f"could not export {loaded.path.name} as {fmt}: "
                         f"{str(exc).strip().splitlines()[0][:200]}") from exc
    paths.sync_file(tmp)
    _remove(out)
    tmp.rename(out)
    paths.sync_dir(out.parent)
    meta = json.dumps(sidecar(loaded, fmt), indent=2, default=str)
    paths.write_text_atomic(sidecar_path(out, fmt), meta)
    return out


def run_exported(out: Path, fmt: str, images: np.ndarray) -> np.ndarray:
    """Probabilities of an exported model (one view, no recipe) with its own runtime."""
    from core.backend import tf

    x = np.ascontiguousarray(images, np.float32)
    if fmt == "onnx":
        _require(fmt, 1)
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0])
    if fmt == "savedmodel":
        module = tf().saved_model.load(str(out))  # held: its variables must outlive the call
        return np.asarray(module.serve(x))
    # LiteRT's own interpreter: TensorFlow's tf.lite.Interpreter is deprecated
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(out))
    entry = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(entry["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(entry["index"], x)
    interpreter.invoke()
    return np.asarray(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))

