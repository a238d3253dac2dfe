"""Save and load models together with what is needed to use them (classes, size, crop).

The facts travel inside the `.keras` file itself, as an extra `skin_lesion.json` member of
its zip archive, so a model file is self-contained and still loads in plain Keras.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core import paths
from core.backend import keras, tf
from core.classes import HAM10000_CLASSES
from core.errors import ModelError

META_MEMBER = "skin_lesion.json"


@dataclass
class ModelInfo:
    """What a saved model needs besides its weights, and where it came from."""

    classes: list[str]
    image_size: int
    crop: str = "squash"
    architecture: str = ""
    trained_on: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    card: str = ""  # the model card (Markdown): intended use, data, metrics, failure modes


@dataclass
class LoadedModel:
    """A Keras model with its `ModelInfo`, ready to classify raw uint8 images."""

    model: Any
    info: ModelInfo
    path: Path
    _compiled: Any = field(default=None, init=False, repr=False, compare=False)

    def predict(self, images: np.ndarray, batch_size: int = 64,
                tta: bool = False) -> np.ndarray:
        """Class probabilities for a (n, size, size, 3) uint8 array, in batches."""
        if self._compiled is None:
            self._compiled = compiled_call(self.model)
        return predict_probabilities(self.model, images, batch_size, tta, self._compiled)


def warm_up(loaded: LoadedModel) -> None:
    """Trace the compiled call now (about a second for MobileNetV2), not on the first image."""
    size = loaded.info.image_size
    loaded.predict(np.zeros((1, size, size, 3), dtype=np.uint8))


def compiled_call(model: Any) -> Any:
    """`model(x, training=False)` as one traced graph for any batch size.

    A deep model (MobileNetV2) called eagerly runs op by op: 200 ms for one image instead of
    about 20 ms. Tracing happens once, on the first call.
    """
    tf_ = tf()
    spec = tf_.TensorSpec((None, *model.input_shape[1:]), tf_.float32)
    return tf_.function(lambda x: model(x, training=False), input_signature=[spec])


def predict_probabilities(model: Any, images: np.ndarray, batch_size: int = 64,
                          tta: bool = False, call: Any = None) -> np.ndarray:
    """Call the model directly per batch (no `model.predict` overhead).

    `call` is a `compiled_call(model)` to reuse; without it the model runs eagerly. With
    `tta`, average over the image and its horizontal, vertical and double flips
    (test-time augmentation: a lesion has no preferred orientation).
    """
    run = call or (lambda x: model(x, training=False))
    if len(images) == 0:
        return np.zeros((0, int(model.output_shape[-1])), dtype=np.float32)
    views = [images]
    if tta:
        views += [images[:, :, ::-1], images[:, ::-1], images[:, ::-1, ::-1]]
    total = None
    for view in views:
        parts = [np.asarray(run(np.ascontiguousarray(view[i:i + batch_size], np.float32)))
                 for i in range(0, len(view), batch_size)]
        proba = np.concatenate(parts)
        total = proba if total is None else total + proba
    assert total is not None
    return total / len(views)


def save_model(model: Any, path: str | Path, info: ModelInfo) -> Path:
    """Write `model` and `info` to a `.keras` file atomically."""
    path = Path(path)
    with paths.atomic_path(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(META_MEMBER, json.dumps(asdict(info), indent=2))
    return path


def read_info(path: str | Path) -> ModelInfo | None:
    """The `ModelInfo` stored in a model file, or None when it has none."""
    try:
        with zipfile.ZipFile(path) as archive:
            if META_MEMBER not in archive.namelist():
                return None
            data = json.loads(archive.read(META_MEMBER))
        return ModelInfo(**data)
    except (zipfile.BadZipFile, OSError, ValueError, TypeError) as exc:
        raise ModelError(f"{Path(path).name} is not a readable model file: {exc}") from exc


def load_model(path: str | Path) -> LoadedModel:
    """Load a `.keras` model in Keras' safe mode (no code in the file is run)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    if path.suffix != ".keras":
        raise ModelError(f"{path.name}: only Keras v3 '.keras' model files can be loaded")
    info = read_info(path)
    try:
        model = keras().saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for bad or unsafe files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path.name} could not be loaded safely: {first[:300]}") from exc
    shape = model.input_shape
    n_out = int(model.output_shape[-1])
    if len(shape) != 4 or shape[-1] != 3 or shape[1] is None or shape[1] != shape[2]:
        raise ModelError(f"{path.name}: expected a square RGB image input, found {shape}")
    if info is None:
        if n_out != len(HAM10000_CLASSES):
            raise ModelError(f"{path.name} has {n_out} outputs and no class list; "
                             f"a foreign model must have the {len(HAM10000_CLASSES)} HAM10000 "
                             "outputs in the order akiec, bcc, bkl, df, mel, nv, vasc")
        info = ModelInfo(list(HAM10000_CLASSES), int(shape[1]), architecture=model.name)
    if len(info.classes) != n_out:
        raise ModelError(f"{path.name}: {n_out} outputs but {len(info.classes)} class names")
    if info.image_size != shape[1]:
        raise ModelError(f"{path.name}: stored size {info.image_size} px does not match "
                         f"the model input {shape[1]} px")
    return LoadedModel(model, info, path)


def package_model(source: str | Path, out: str | Path, card: str = "") -> Path:
    """Copy a model file without its optimizer state, with `card` as its model card.

    This is how a run's model becomes a shippable file (e.g. the bundled default model).
    """
    loaded = load_model(source)
    if card:
        loaded.info.card = card
    return save_model(loaded.model, out, loaded.info)
