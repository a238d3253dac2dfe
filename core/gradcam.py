"""Grad-CAM: where in the image the model looked for the class it predicted (or any class).

Selvaraju et al. 2017. The gradient of the class score with respect to the last spatial
feature map weights that map's channels; the weighted sum, rectified and normalised, is the
heatmap. It is mapped back onto the original image through the model's crop policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from core.backend import keras, tf
from core.errors import ImageError, ModelError
from core.images import read_image
from core.model_io import LoadedModel


@dataclass
class GradCam:
    """A heatmap (0-1) with the original image's size, and the class it explains."""

    heatmap: np.ndarray  # (height, width) float32
    class_index: int
    class_name: str


def _feature_layer(model: Any) -> Any:
    """The last top-level layer with a spatial (4-D) output: conv block or whole backbone."""
    for layer in reversed(model.layers[:-1]):
        shape = getattr(layer, "output", None)
        if shape is not None and len(layer.output.shape) == 4 and layer.output.shape[1] > 1:
            return layer
    raise ModelError(f"{model.name} has no spatial feature map to explain")


def _run_chain(model: Any, feature_layer: Any, x: Any) -> tuple[Any, Any]:
    """Run a single-path model layer by layer: (the feature layer's output, probabilities)."""
    features = None
    for layer in model.layers:
        if isinstance(layer, keras().layers.InputLayer):
            continue
        x = layer(x, training=False)
        if layer is feature_layer:
            features = x
    return features, x


def heatmap_at_input(model: Any, image: np.ndarray, class_index: int | None = None
                     ) -> tuple[np.ndarray, int]:
    """Grad-CAM at the model's input size for one (size, size, 3) image.

    An ensemble's heatmap is the mean of its members' heatmaps for the ensemble's class.
    """
    from core.ensemble import members, single_output

    if members(model):
        index = int(np.argmax(model(image[None].astype(np.float32), training=False)[0])) \
            if class_index is None else class_index
        size, maps = image.shape[0], []
        for member in members(model):
            own = int(member.input_shape[1])
            scaled = image if own == size else np.asarray(
                Image.fromarray(image).resize((own, own), Image.Resampling.BILINEAR))
            cam, _ = heatmap_at_input(single_output(member), scaled, index)
            maps.append(np.asarray(Image.fromarray(cam).resize((size, size),
                                                                Image.Resampling.BILINEAR)))
        return np.clip(np.mean(maps, axis=0), 0, 1).astype(np.float32), index
    tf_ = tf()
    layer = _feature_layer(model)
    x = tf_.convert_to_tensor(image[None].astype(np.float32))
    with tf_.GradientTape() as tape:
        if hasattr(layer, "layers"):  # a nested backbone: its output is not in the outer graph
            features, proba = _run_chain(model, layer, x)
        else:
            features, proba = keras().Model(model.input, [layer.output, model.output])(
                x, training=False)
        index = int(tf_.argmax(proba[0])) if class_index is None else class_index
        score = proba[:, index]
    grads = tape.gradient(score, features)
    weights = tf_.reduce_mean(grads, axis=(1, 2))  # one weight per channel
    cam = tf_.nn.relu(tf_.reduce_sum(features * weights[:, None, None, :], axis=-1))[0]
    cam = cam.numpy().astype(np.float32)
    peak = float(cam.max())
    cam = cam / peak if peak > 0 else cam
    size = image.shape[0]
    resized = Image.fromarray(cam).resize((size, size), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0, 1), index


def gradcam(loaded: LoadedModel, path: str | Path, class_index: int | None = None) -> GradCam:
    """Grad-CAM of the predicted class (or `class_index`) over the image file at `path`."""
    info = loaded.info
    image = read_image(path, info.image_size, info.crop)
    cam, index = heatmap_at_input(loaded.model, image, class_index)
    width, height = original_size(path)
    if info.crop == "center":
        side = min(width, height)
        full = np.zeros((height, width), dtype=np.float32)
        left, top = (width - side) // 2, (height - side) // 2
        square = Image.fromarray(cam).resize((side, side), Image.Resampling.BILINEAR)
        full[top:top + side, left:left + side] = np.asarray(square)
    else:
        full = np.asarray(Image.fromarray(cam).resize((width, height),
                                                      Image.Resampling.BILINEAR))
    return GradCam(np.clip(full, 0, 1).astype(np.float32), index, info.classes[index])


def original_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of the image as displayed (EXIF orientation applied)."""
    try:
        with Image.open(path) as img:
            return ImageOps.exif_transpose(img).size
    except Exception as exc:  # read_image already succeeded, so this is rare
        raise ImageError(f"{Path(path).name}: cannot read its size ({exc})") from exc


def display_image(path: str | Path) -> np.ndarray:
    """The image as RGB uint8 (EXIF orientation applied), for overlays."""
    with Image.open(path) as img:
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


def overlay(image: np.ndarray, heatmap: np.ndarray, opacity: float = 0.45) -> np.ndarray:
    """Blend a heatmap (0-1, same height and width) over an RGB uint8 image, 'jet' colours."""
    from matplotlib import colormaps

    colours = (colormaps["jet"](heatmap)[..., :3] * 255).astype(np.float32)
    alpha = opacity * np.clip(heatmap, 0.15, 1.0)[..., None]
    blended = image.astype(np.float32) * (1 - alpha) + colours * alpha
    return blended.clip(0, 255).astype(np.uint8)
