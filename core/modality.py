"""The modality check: is this a dermoscopic image of a skin lesion?

App-wide, beside each model's own familiarity gate (`core.domain`): every model was trained
on dermoscopic images, so a clinical camera photo of skin, a slide, a scan or an ordinary
photo gets no diagnosis from any of them. The check is a small classifier shipped in
`resources/models/modality.keras` (trained by `tools/train_modality.py`): pooled
EfficientNet-Lite0 features (ImageNet weights, frozen) and a three-way softmax, dermoscopic /
clinical photo of skin / other image. An image is refused when P(dermoscopic) is below
the stored threshold; the answer is then the likelier of the other two.

It answers through its LiteRT twin (`modality.tflite`, without TensorFlow) when the twin's
SHA-256 matches the one stored in the `.keras` file, else through Keras in safe mode. Its
settings are a JSON member of the `.keras` file, read without TensorFlow.
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core import paths
from core.errors import ModelError

if TYPE_CHECKING:
    from core.dataset import Dataset

MODALITIES = ("dermoscopic", "clinical", "other")
MODALITY_MODEL = paths.RESOURCES_DIR / "models" / "modality.keras"
SETTINGS_MEMBER = "modality.json"
VIEWS_PER_CALL = 16
COLOUR_CONSTANCY = "shades-of-grey"  # settings["colour"] of a check that normalises colour
# The Lite0 layers whose pooled maps make the check's feature: mid-level texture, which
# says much about how an image was taken (dermatoscope, camera, scanner), with or without
# the semantic last layer; `tools/train_modality.py` chooses on validation images.
TAPS = ("block4_add", "block10_add", "block14_add")
FEATURE_SETS = {"mid": TAPS, "mid+final": (*TAPS, "head_relu")}


@cache
def colour_constancy_class() -> type:
    """The registered ShadesOfGrey layer class (defined on first use: Keras loads lazily)."""
    from core.backend import keras

    k = keras()
    ops = k.ops

    @k.saving.register_keras_serializable(package="skin_lesion")
    class ShadesOfGrey(k.layers.Layer):  # type: ignore[misc, name-defined]
        """Colour constancy (Finlayson and Trezzi's shades of grey): each image's channels
        scaled so that its illuminant, estimated as the channels' `power`-norm, is grey. RGB
        0-255 in and out. What another dermatoscope's light or white balance changes is
        removed before the check looks at the image."""

        def __init__(self, power: float = 6.0, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.power = float(power)

        def call(self, images: Any) -> Any:
            x = ops.cast(images, "float32") / 255.0
            light = ops.power(ops.mean(ops.power(x, self.power), axis=(1, 2), keepdims=True),
                              1.0 / self.power)
            gain = ops.mean(light, axis=-1, keepdims=True) / ops.maximum(light, 1e-6)
            return ops.clip(x * gain, 0.0, 1.0) * 255.0

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "power": self.power}

    return ShadesOfGrey


def shades_of_grey(images: np.ndarray, power: float = 6.0, chunk: int = 512) -> np.ndarray:
    """The ShadesOfGrey layer's arithmetic in NumPy, for uint8 (n, h, w, 3) images (the
    training tool normalises its cached views with it)."""
    out = np.empty_like(images)
    for start in range(0, len(images), chunk):
        x = images[start:start + chunk].astype(np.float32) / 255.0
        light = np.mean(x ** power, axis=(1, 2), keepdims=True) ** (1.0 / power)
        gain = np.mean(light, axis=-1, keepdims=True) / np.maximum(light, 1e-6)
        out[start:start + chunk] = np.clip(x * gain, 0.0, 1.0) * 255.0
    return out


def tapped_backbone(size: int, taps: tuple[str, ...] = TAPS,
                    weights: str | None = "imagenet") -> Any:
    """Lite0 (ImageNet) giving the pooled maps of `taps`, concatenated (only the layers
    those need are kept)."""
    from core.backend import keras
    from core.lite0 import lite0_backbone

    layers = keras().layers
    base = lite0_backbone(size, weights)
    pooled = [layers.GlobalAveragePooling2D(name=f"pool_{t}")(base.get_layer(t).output)
              for t in taps]
    return keras().Model(base.input, layers.Concatenate(name="modality_features")(pooled),
                         name="lite0_tapped")


@dataclass
class ModalityAnswer:
    """Per image: the answer, P(dermoscopic), and whether the check lets it through."""

    labels: list[str]
    scores: np.ndarray  # (n,) P(dermoscopic)
    accepted: np.ndarray  # (n,) bool


def read_settings(path: str | Path) -> dict[str, Any]:
    """The check's settings stored in its `.keras` file (no TensorFlow needed)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            settings = json.loads(archive.read(SETTINGS_MEMBER))
        int(settings["size"]), float(settings["threshold"])
    except (KeyError, zipfile.BadZipFile, OSError, ValueError, TypeError) as exc:
        raise ModelError(f"{path.name} is not a readable modality check: {exc}") from exc
    return settings


class ModalityCheck:
    """The check, ready to answer for uint8 images at `size` px (`crop` "center")."""

    def __init__(self, path: str | Path = MODALITY_MODEL, runtime: str = "auto") -> None:
        from core.twin import file_sha256, litert_available

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"the modality check is missing: {self.path.name} not found")
        self.settings = read_settings(self.path)
        self.size = int(self.settings["size"])
        self.crop = str(self.settings.get("crop", "center"))
        self.threshold = float(self.settings["threshold"])
        self._lock = threading.Lock()
        twin = self.path.with_suffix(".tflite")
        usable = runtime != "keras" and litert_available() and twin.is_file() and \
            file_sha256(twin) == self.settings.get("twin_sha256")
        if runtime == "litert" and not usable:
            raise ModelError(f"{twin.name} is missing, damaged or LiteRT is not installed")
        self._call: Callable[[np.ndarray], np.ndarray]
        if usable:
            self.runtime = "LiteRT"
            self._call = self._litert(twin)
        else:
            self.runtime = "Keras"
            self._call = self._keras()

    def _litert(self, twin: Path) -> Callable[[np.ndarray], np.ndarray]:
        from ai_edge_litert.interpreter import Interpreter

        from core.backend import quiet_stderr

        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else os.cpu_count() or 1
        try:
            with quiet_stderr():
                runner = Interpreter(model_path=str(twin),
                                     num_threads=threads).get_signature_runner()
        except Exception as exc:  # the interpreter raises RuntimeError/ValueError
            raise ModelError(f"{twin.name} could not be run by LiteRT: {exc}") from exc

        def call(views: np.ndarray) -> np.ndarray:
            with self._lock:  # one interpreter, one thread at a time
                return np.asarray(next(iter(runner(image=views).values())))
        return call

    def _keras(self) -> Callable[[np.ndarray], np.ndarray]:
        from core.backend import keras

        colour_constancy_class()  # registered, so a check that starts with it loads safely
        try:
            model = keras().saving.load_model(self.path, compile=False, safe_mode=True)
        except Exception as exc:  # Keras raises many types for bad or unsafe files
            raise ModelError(f"{self.path.name} could not be loaded safely: "
                             f"{str(exc)[:200]}") from exc

        def call(views: np.ndarray) -> np.ndarray:
            return np.asarray(model(views, training=False))
        return call

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(n, 3) probabilities of dermoscopic, clinical, other for uint8 (n, size, size, 3)."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != (self.size, self.size, 3):
            raise ModelError(f"the modality check expects {self.size} px RGB images, "
                             f"got {images.shape[1:]}")
        out = np.zeros((len(images), len(MODALITIES)), dtype=np.float32)
        for start in range(0, len(images), VIEWS_PER_CALL):
            out[start:start + VIEWS_PER_CALL] = self._call(
                images[start:start + VIEWS_PER_CALL].astype(np.float32))
        return out

    def assess(self, images: np.ndarray) -> ModalityAnswer:
        """The answer for each image (see the module's docstring for the rule)."""
        proba = self.probabilities(images)
        accepted = proba[:, 0] >= self.threshold
        other = 1 + proba[:, 1:].argmax(axis=1)
        labels = [MODALITIES[0] if ok else MODALITIES[o] for ok, o in zip(accepted, other,
                                                                           strict=True)]
        return ModalityAnswer(labels, proba[:, 0].astype(np.float64), accepted)


_default: ModalityCheck | None = None
_default_lock = threading.Lock()


def default_check() -> ModalityCheck:
    """The shipped check, loaded once per process (thread-safe)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ModalityCheck()
        return _default


def save_modality_model(backbone: Any, weights: np.ndarray, bias: np.ndarray,
                        settings: dict[str, Any], out: str | Path) -> Path:
    """Write the check (`backbone` + a softmax with `weights`, `bias`) and its LiteRT twin."""
    from core.backend import keras
    from core.lite0 import lite0_scaling
    from core.twin import file_sha256

    out = Path(out)
    size = int(settings["size"])
    inputs = keras().Input((size, size, 3), name="image")
    x = inputs
    if settings.get("colour") == COLOUR_CONSTANCY:
        x = colour_constancy_class()(name="shades_of_grey")(x)
    x = backbone(lite0_scaling()(x), training=False)
    head = keras().layers.Dense(len(MODALITIES), activation="softmax", name="modality",
                                dtype="float32")
    model = keras().Model(inputs, head(x), name="modality_check")
    head.set_weights([weights, bias])
    twin = out.with_suffix(".tflite")
    with paths.atomic_path(twin) as tmp:
        model.export(str(tmp), format="litert", verbose=False)
    settings = {**settings, "twin_sha256": file_sha256(twin)}
    with paths.atomic_path(out) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(SETTINGS_MEMBER, json.dumps(settings, indent=2))
    return out


def not_dermoscopic(dataset: Dataset, check: ModalityCheck, *,
                    on_progress: Callable[[int, int], None] | None = None,
                    should_stop: Callable[[], bool] | None = None) -> list[dict[str, Any]]:
    """The images of `dataset` the check does not take for dermoscopic, one dict each
    (image_id, path, dx, modality, score): in a dermoscopic training set, a data error."""
    from core.errors import CancelledError
    from core.images import load_images

    images = load_images(dataset, check.size, check.crop, should_stop=should_stop).images
    records = dataset.records
    flagged: list[dict[str, Any]] = []
    step = 256
    for start in range(0, len(images), step):
        if should_stop and should_stop():
            raise CancelledError("the modality check of the dataset was stopped")
        answer = check.assess(images[start:start + step])
        for k in np.flatnonzero(~answer.accepted):
            row = records.iloc[start + int(k)]
            flagged.append({"image_id": str(row["image_id"]), "path": str(row["path"]),
                            "dx": str(row["dx"]), "modality": answer.labels[int(k)],
                            "score": round(float(answer.scores[int(k)]), 4)})
        if on_progress:
            on_progress(min(start + step, len(images)), len(images))
    return flagged
