"""LiteRT twins: classify with a model's `.tflite` copy, without importing TensorFlow.

Importing TensorFlow, loading a `.keras` file and tracing it take seconds and about 700 MB;
the model itself needs milliseconds. So every model that classifies gets a twin beside it
(`X.keras` -> `X.tflite` plus `X.tflite.json`): Keras' own `model.export(format="litert")`
of the model with two outputs, the probabilities and the penultimate features the
out-of-distribution gate reads. The ensemble is inside the twin; the rest of the recipe
(flip TTA, temperature, class bias) and the gate are applied by the same code as on the
Keras path (`core.model_io.Classifier`), with the settings read from the `.keras` file's
own members, so both runtimes give the same answers.

A model may also have an int8 twin (`X.int8.tflite`): post-training integer quantization,
calibrated on training images (`build_twin(..., calibration=images)`), with float input and
outputs. `auto` and `litert` prefer it when it is current; `litert-float` takes the float one.

The sidecar records the SHA-256 of the `.keras` file and of the twin. A twin whose hashes do
not match, or that the interpreter cannot read, is refused (never trusted) and rebuilt the
next time TensorFlow is loaded. Where the model's folder is read-only (an installed
package), the twin goes to the user cache folder, named by the model's hash.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core import __version__, paths
from core.backend import quiet_stderr
from core.errors import ModelError
from core.model_io import (
    Classifier,
    LoadedModel,
    load_model,
    read_domain,
    read_info,
    read_training_ids,
)

TWIN_FORMAT = 1
RUNTIMES = ("auto", "litert", "litert-float", "keras")
PRECISIONS = ("int8", "float")  # the order `auto` tries them in
VIEWS_PER_CALL = 8  # LiteRT is fastest, and smallest in memory, on a few views per call
INSTALL_HINT = "pip install ai-edge-litert (or the [classify] extra)"


def litert_available() -> bool:
    """Whether the LiteRT interpreter (`ai-edge-litert`) is installed."""
    try:
        return importlib.util.find_spec("ai_edge_litert") is not None
    except (ImportError, ValueError):
        return False


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_of(twin: Path) -> Path:
    """The JSON that says which `.keras` file a twin came from."""
    return twin.with_name(twin.name + ".json")


def _places(model_path: Path, source_sha: str, precision: str = "float") -> list[Path]:
    """Where a twin of `model_path` may be: beside it, else in the user cache folder."""
    suffix = ".tflite" if precision == "float" else f".{precision}.tflite"
    return [model_path.with_suffix(suffix),
            paths.cache_dir() / "twins" / f"{source_sha[:24]}{suffix}"]


@dataclass
class TwinCheck:
    """Whether `model_path` has a twin that can be trusted, and why not."""

    model_path: Path
    source_sha: str
    twin: Path | None = None  # the current twin, when there is one
    problem: str = ""  # why there is none: missing, stale or damaged
    precision: str = "float"


def check_twin(model_path: str | Path, precision: str = "float") -> TwinCheck:
    """Look for a current twin of `model_path` (its hashes must match)."""
    model_path = Path(model_path)
    try:
        source_sha = file_sha256(model_path)
    except OSError as exc:
        raise ModelError(f"model file not readable: {model_path}: {exc}") from exc
    problems = []
    for twin in _places(model_path, source_sha, precision):
        meta = sidecar_of(twin)
        if not twin.is_file() and not meta.is_file():
            continue
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
            if data.get("twin_format") != TWIN_FORMAT:
                problems.append(f"{twin.name}: made by another version of the app")
            elif data.get("source_sha256") != source_sha:
                problems.append(f"{twin.name} is stale: {model_path.name} changed since")
            elif data.get("twin_sha256") != file_sha256(twin):
                problems.append(f"{twin.name} is damaged: its hash does not match its sidecar")
            elif data.get("precision", "float") != precision:
                problems.append(f"{twin.name} is not a {precision} twin")
            else:
                return TwinCheck(model_path, source_sha, twin, precision=precision)
        except (OSError, ValueError, AttributeError) as exc:
            problems.append(f"{twin.name}: unreadable sidecar or twin ({exc})")
    return TwinCheck(model_path, source_sha, precision=precision,
                     problem="; ".join(problems) or f"{model_path.name} has no "
                     f"{_kind(precision)}")


def _kind(precision: str) -> str:
    """How messages name a twin of `precision`."""
    return "LiteRT twin" if precision == "float" else f"{precision} LiteRT twin"


def _writable_place(model_path: Path, source_sha: str, precision: str) -> Path:
    beside, cached = _places(model_path, source_sha, precision)
    if os.access(beside.parent, os.W_OK):
        return beside
    cached.parent.mkdir(parents=True, exist_ok=True)
    return cached


def _int8_options(calibration: np.ndarray) -> dict[str, Any]:
    """Converter options for integer quantization calibrated on `calibration` (uint8 views)."""
    from core.backend import tf

    def views() -> Any:
        for image in calibration:
            yield [image[None].astype(np.float32)]

    return {"optimizations": [tf().lite.Optimize.DEFAULT], "representative_dataset": views}


def build_twin(loaded: LoadedModel, status: Callable[[str], None] | None = None,
               calibration: np.ndarray | None = None) -> Path:
    """Export `loaded` as its LiteRT twin (needs TensorFlow); return the twin's path.

    With `calibration` (N x size x size x 3 uint8 images, from the training part), the twin
    is int8: weights and activations quantized, ranges calibrated on those images.
    """
    from core.backend import keras
    from core.model_io import penultimate

    precision = "float" if calibration is None else "int8"
    if status:
        status(f"Building the {_kind(precision)} of {loaded.path.name}…")
    source_sha = file_sha256(loaded.path)
    out = _writable_place(loaded.path, source_sha, precision)
    model = loaded.model
    size = loaded.info.image_size
    both = keras().Model(model.inputs, [model.outputs[0], penultimate(model)])
    options = {} if calibration is None else _int8_options(calibration)
    try:
        with paths.atomic_path(out) as tmp:
            both.export(str(tmp), format="litert", verbose=False, **options)
    except Exception as exc:  # the converter raises many types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"could not build a LiteRT twin of {loaded.path.name}: "
                         f"{first[:200]}") from exc
    meta = {"twin_format": TWIN_FORMAT, "source": loaded.path.name,
            "source_sha256": source_sha, "twin_sha256": file_sha256(out),
            "precision": precision,
            "calibration": None if calibration is None else
            f"{len(calibration)} training images",
            "outputs": {"probabilities": "output_0", "features": "output_1"},
            "input": {"image_size": size, "crop": loaded.info.crop, "dtype": "float32",
                      "values": "RGB 0-255, one row per view"},
            "recipe": {"tta_flips": loaded.info.tta, "temperature": loaded.info.temperature,
                       "class_bias": loaded.info.class_bias,
                       "applied_by": "core.model_io.Classifier, from the .keras file"},
            "made_by": f"skin-lesion-classifier {__version__}"}
    paths.write_text_atomic(sidecar_of(out), json.dumps(meta, indent=2))
    return out


def ensure_twin(loaded: LoadedModel, status: Callable[[str], None] | None = None) -> str:
    """Build `loaded`'s twin unless a current one exists; "" or why it could not be built."""
    try:
        if check_twin(loaded.path).twin is None:
            build_twin(loaded, status)
        return ""
    except (ModelError, OSError) as exc:
        return str(exc)


@dataclass
class TwinModel(Classifier):
    """A model answered by its LiteRT twin: the same interface as `LoadedModel`."""

    twin: Path = field(kw_only=True)
    precision: str = field(default="float", kw_only=True)
    _runner: Any = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False,
                                  compare=False)
    runtime = "LiteRT"
    default_batch = VIEWS_PER_CALL

    def __post_init__(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        if self.precision != "float":
            self.runtime = f"LiteRT {self.precision}"
        try:
            with quiet_stderr():  # the interpreter logs its CPU delegate on fd 2
                # every core: the default thread count left one of two cores idle
                interpreter = Interpreter(model_path=str(self.twin),
                                          num_threads=len(os.sched_getaffinity(0))
                                          if hasattr(os, "sched_getaffinity")
                                          else os.cpu_count() or 1)
                self._runner = interpreter.get_signature_runner()
                size = self.info.image_size
                out = self._runner(image=np.zeros((1, size, size, 3), np.float32))
        except Exception as exc:  # the interpreter raises RuntimeError/ValueError for bad files
            raise ModelError(f"{self.twin.name} could not be run by LiteRT: {exc}") from exc
        if out.get("output_0", np.zeros(0)).shape != (1, len(self.info.classes)) \
                or "output_1" not in out:
            raise ModelError(f"{self.twin.name} does not have the outputs of a twin")

    def _views_call(self) -> Callable[[np.ndarray], Any]:
        return self._call

    def _call(self, views: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:  # an interpreter is not safe to call from two threads at once
            out = self._runner(image=views)
        return out["output_0"], out["output_1"]


def load_twin(model_path: str | Path, precisions: tuple[str, ...] = ("float",)) -> TwinModel:
    """The first current twin of `model_path` among `precisions`, checked.

    Raises `ModelError` saying why none can be used.
    """
    model_path = Path(model_path).expanduser()
    if not model_path.is_file():
        raise ModelError(f"model file not found: {model_path}")
    if not litert_available():
        raise ModelError(f"the LiteRT runtime is not installed: {INSTALL_HINT}")
    checks = [check_twin(model_path, p) for p in precisions]
    found = next((c for c in checks if c.twin is not None), None)
    if found is None or found.twin is None:
        # the float twin's problem is the one a user can act on (it is rebuilt on its own)
        raise ModelError(checks[-1].problem)
    info = read_info(model_path)
    if info is None:
        raise ModelError(f"{model_path.name} has no model information; use --runtime keras")
    return TwinModel(info, model_path, read_domain(model_path, info),
                     read_training_ids(model_path), twin=found.twin,
                     precision=found.precision)


def open_model(model_path: str | Path, runtime: str = "auto",
               status: Callable[[str], None] | None = None) -> Classifier:
    """A model ready to classify with the chosen runtime.

    `auto`: the LiteRT twin when it is current and LiteRT is installed (the int8 one when
    the model has it); otherwise Keras, and then the float twin is (re)built for next time.
    `litert`: the twin (int8 first) or a `ModelError` saying why not. `litert-float`: the
    float twin only. `keras`: always the Keras file.
    """
    say = status or (lambda _m: None)
    if runtime not in RUNTIMES:
        raise ModelError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
    model_path = Path(model_path).expanduser()
    if not model_path.is_file():
        raise ModelError(f"model file not found: {model_path}")
    if runtime != "keras":
        precisions = ("float",) if runtime == "litert-float" else PRECISIONS
        try:
            return load_twin(model_path, precisions)
        except ModelError as exc:
            if runtime.startswith("litert"):
                raise
            reason = str(exc)
        say(f"using Keras: {reason}")
    loaded = load_model(model_path)
    if runtime == "auto" and litert_available():
        problem = ensure_twin(loaded, say)
        if problem:
            say(f"no LiteRT twin: {problem}")
    return loaded
