"""Save and load models together with what is needed to use them (classes, size, crop).

The facts travel inside the `.keras` file itself, as extra members of its zip archive, so a
model file is self-contained and still loads in plain Keras (safe mode):

* `skin_lesion.json`: `ModelInfo`, including the inference recipe (flip TTA, temperature,
  class bias) and the out-of-distribution gate's settings;
* `skin_lesion_domain.npz`: the gate's arrays (`core.domain`), read without pickle;
* `skin_lesion_training_ids.txt`: the image ids of the training part, one per line.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core import paths
from core.backend import keras, tf
from core.classes import HAM10000_CLASSES
from core.domain import DomainModel
from core.errors import ModelError

META_MEMBER = "skin_lesion.json"
DOMAIN_MEMBER = "skin_lesion_domain.npz"
IDS_MEMBER = "skin_lesion_training_ids.txt"


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
    # The inference recipe, applied by every path that classifies (CLI, GUI, evaluation):
    tta: bool = False  # average over the image and its three flips unless told otherwise
    temperature: float = 1.0  # probabilities = softmax((log(p) + class_bias) / temperature)
    class_bias: list[float] | None = None  # a decision rule: per-class log-probability offsets
    domain: dict[str, Any] | None = None  # the out-of-distribution gate's settings, if any


@dataclass
class Scores:
    """What classifying a batch gives: probabilities and, with a gate, domain scores."""

    probabilities: np.ndarray  # (n, classes), the stored recipe applied
    domain_scores: np.ndarray | None = None  # (n,), larger is less like the training images
    in_domain: np.ndarray | None = None  # (n,) bool; None when the model has no gate


@dataclass
class Classifier:
    """What every runtime shares: the stored recipe and gate applied to raw uint8 images.

    A subclass gives `_views_call` (float32 views in, probabilities and gate features out):
    `LoadedModel` runs the Keras model, `core.twin.TwinModel` its LiteRT twin. Both give
    the same answers because everything around that one call is this code.
    """

    info: ModelInfo
    path: Path  # the .keras file
    domain: DomainModel | None = None
    training_ids: frozenset[str] | None = None  # the training part's image ids, if recorded
    runtime = "Keras"  # which engine answers, as the status bar and the CLI name it
    default_batch = 64  # images per model call (four views each with TTA)

    def _views_call(self) -> Callable[[np.ndarray], Any]:
        raise NotImplementedError

    def uses_tta(self, tta: bool | None = None) -> bool:
        """Whether a call with `tta` averages the flips (None: the stored recipe decides)."""
        return self.info.tta if tta is None else tta

    def classify(self, images: np.ndarray, batch_size: int | None = None,
                 tta: bool | None = None) -> Scores:
        """Probabilities (recipe applied) and domain scores for (n, size, size, 3) uint8."""
        proba, features = run_batches(self._views_call(), images,
                                      batch_size or self.default_batch, self.uses_tta(tta),
                                      len(self.info.classes))
        proba = apply_recipe(proba, self.info.temperature, self.info.class_bias)
        if self.domain is None or features is None:
            return Scores(proba)
        scores = self.domain.score(features, images) if len(images) else np.zeros(0)
        return Scores(proba, scores, self.domain.in_domain(scores))

    def predict(self, images: np.ndarray, batch_size: int | None = None,
                tta: bool | None = None) -> np.ndarray:
        """Class probabilities for a (n, size, size, 3) uint8 array, in batches."""
        return self.classify(images, batch_size, tta).probabilities

    def features(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """The gate's penultimate features (n, d) float32 of the unflipped images: the
        feature space the familiarity gate and `core.similar` work in."""
        _, features = run_batches(self._views_call(), images, batch_size or self.default_batch,
                                  False, len(self.info.classes))
        if features is None:
            return np.zeros((0, 0), dtype=np.float32)
        return np.asarray(features, dtype=np.float32)


@dataclass
class LoadedModel(Classifier):
    """A Keras model with its `ModelInfo`, ready to classify raw uint8 images."""

    model: Any = field(kw_only=True)
    _compiled: Any = field(default=None, init=False, repr=False, compare=False)

    def _views_call(self) -> Callable[[np.ndarray], Any]:
        if self._compiled is None:
            self._compiled = compiled_call(self.model, with_features=True)
        return self._compiled


def apply_recipe(proba: np.ndarray, temperature: float = 1.0,
                 class_bias: Iterable[float] | None = None) -> np.ndarray:
    """softmax((log(p) + class_bias) / temperature); `proba` unchanged when both are neutral."""
    if temperature == 1.0 and class_bias is None:
        return proba
    logits = np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, None))
    if class_bias is not None:
        logits = logits + np.asarray(list(class_bias), dtype=np.float64)
    logits /= temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def warm_up(loaded: Classifier) -> None:
    """Trace the compiled call now (about a second for MobileNetV2), not on the first image."""
    size = loaded.info.image_size
    loaded.classify(np.zeros((1, size, size, 3), dtype=np.uint8))


def penultimate(model: Any) -> Any:
    """The tensor the final layer reads in `model`'s own graph: the gate's features.

    Not `model.layers[-1].input`: a transfer model's head shares its layers with the full
    model, and a shared layer's `.input` is that of its first call, in the other graph.
    """
    from core.ensemble import first_member_features, members

    if members(model):  # an ensemble: its first member's features
        return first_member_features(model)
    layer, node_index, _ = model.outputs[0]._keras_history
    return layer._inbound_nodes[node_index].input_tensors[0]


def compiled_call(model: Any, with_features: bool = False) -> Any:
    """`model(x, training=False)` as one traced graph for any batch size.

    With `with_features` it returns (probabilities, penultimate features). A deep model
    (MobileNetV2) called eagerly runs op by op: 200 ms for one image instead of about 20 ms.
    Tracing happens once, on the first call.
    """
    tf_ = tf()
    spec = tf_.TensorSpec((None, *model.input_shape[1:]), tf_.float32)
    target = model
    if with_features:
        target = keras().Model(model.inputs, [model.outputs[0], penultimate(model)])
    return tf_.function(lambda x: target(x, training=False), input_signature=[spec])


def run_batches(call: Any, images: np.ndarray, batch_size: int, tta: bool,
                n_classes: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(mean probabilities over the views, features of the unflipped view) per image.

    `call` is a `compiled_call(..., with_features=True)`; the flips are the horizontal,
    vertical and double flips (a lesion has no preferred orientation). The views of a chunk
    go through the model in one call: four single images cost little more than one.
    """
    if len(images) == 0:
        return np.zeros((0, n_classes), dtype=np.float32), None
    n_views = 4 if tta else 1
    step = max(1, batch_size // n_views)
    probas, feats = [], []
    for i in range(0, len(images), step):
        chunk = images[i:i + step]
        views = [chunk]
        if tta:
            views += [chunk[:, :, ::-1], chunk[:, ::-1], chunk[:, ::-1, ::-1]]
        out = call(np.ascontiguousarray(np.concatenate(views), np.float32))
        proba, feat = out if isinstance(out, list | tuple) else (out, None)
        probas.append(np.asarray(proba).reshape(n_views, len(chunk), -1).mean(axis=0))
        if feat is not None:
            feats.append(np.asarray(feat)[:len(chunk)].reshape(len(chunk), -1))
    return np.concatenate(probas), np.concatenate(feats) if feats else None


def predict_probabilities(model: Any, images: np.ndarray, batch_size: int = 64,
                          tta: bool = False, call: Any = None) -> np.ndarray:
    """Probabilities of `model` on (n, size, size, 3) images; `tta` averages the 4 flips.

    `call` is a `compiled_call(model)` to reuse (with or without features).
    """
    run = call or compiled_call(model)
    return run_batches(run, images, batch_size, tta, int(model.output_shape[-1]))[0]


def save_model(model: Any, path: str | Path, info: ModelInfo,
               domain: DomainModel | None = None,
               training_ids: Iterable[str] | None = None) -> Path:
    """Write `model`, `info`, the domain gate and the training ids to a `.keras` file atomically.

    `info.domain` is set from `domain` (or cleared when there is none).
    """
    path = Path(path)
    info.domain = domain.params() if domain is not None else None
    with paths.atomic_path(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(META_MEMBER, json.dumps(asdict(info), indent=2))
            if domain is not None:
                archive.writestr(DOMAIN_MEMBER, domain.to_bytes())
            if training_ids is not None:
                archive.writestr(IDS_MEMBER, "\n".join(sorted(set(training_ids))) + "\n")
    return path


def read_domain(path: str | Path, info: ModelInfo | None) -> DomainModel | None:
    """The gate stored in a model file, or None for files without one."""
    if info is None or not info.domain:
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            data = archive.read(DOMAIN_MEMBER)
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"{Path(path).name}: its domain model is missing or damaged") from exc
    return DomainModel.from_bytes(data, info.domain)


def read_training_ids(path: str | Path) -> frozenset[str] | None:
    """The training part's image ids stored in a model file (None when it has none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if IDS_MEMBER not in archive.namelist():
                return None
            text = archive.read(IDS_MEMBER).decode("utf-8")
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{Path(path).name}: its training ids are unreadable: {exc}") from exc
    return frozenset(line for line in text.splitlines() if line)


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
    if info.class_bias is not None and len(info.class_bias) != n_out:
        raise ModelError(f"{path.name}: {len(info.class_bias)} class biases for {n_out} outputs")
    if not info.temperature > 0:
        raise ModelError(f"{path.name}: the stored temperature must be positive")
    return LoadedModel(info, path, read_domain(path, info), read_training_ids(path),
                       model=model)


def package_model(source: str | Path, out: str | Path, card: str = "") -> Path:
    """Copy a model file without its optimizer state, with `card` as its model card.

    The gate and the training ids travel along. This is how a run's model becomes a
    shippable file (e.g. the bundled default model); `core.trust` can refit the gate.
    """
    loaded = load_model(source)
    if card:
        loaded.info.card = card
    return save_model(loaded.model, out, loaded.info, loaded.domain, loaded.training_ids)
