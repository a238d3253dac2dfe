"""Grad-CAM heatmaps: the image's size, following the lesion, mapped through the crop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.backend import keras
from core.gradcam import gradcam, overlay
from core.model_io import ModelInfo, load_model, save_model


def dark_spot_model(size: int = 32) -> object:
    """A model whose class 'a' score grows with dark pixels: Grad-CAM must point at them."""
    k = keras()
    inputs = k.Input((size, size, 3))
    x = k.layers.Rescaling(1 / 255)(inputs)
    conv = k.layers.Conv2D(4, 3, padding="same", activation="relu")
    x = conv(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    dense = k.layers.Dense(7, activation="softmax")
    outputs = dense(x)
    conv.set_weights([np.full((3, 3, 3, 4), -1 / 9, "float32"), np.full(4, 0.9, "float32")])
    kernel = np.zeros((4, 7), "float32")
    kernel[:, 0] = 3.0
    dense.set_weights([kernel, np.zeros(7, "float32")])
    return k.Model(inputs, outputs)


def saved(tmp_path: Path, crop: str) -> Path:
    return save_model(dark_spot_model(), tmp_path / f"{crop}.keras",
                      ModelInfo(list("abcdefg"), 32, crop, "test"))


def lesion(path: Path, centre: tuple[int, int], size: tuple[int, int] = (200, 150)) -> Path:
    img = Image.new("RGB", size, (230, 190, 180))
    x, y = centre
    ImageDraw.Draw(img).ellipse((x - 22, y - 18, x + 22, y + 18), fill=(40, 20, 10))
    img.save(path)
    return path


def centre_of_heat(heatmap: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(heatmap.shape)
    total = heatmap.sum()
    return float((xs * heatmap).sum() / total), float((ys * heatmap).sum() / total)


def test_heatmap_has_the_images_size_and_follows_the_lesion(tmp_path: Path) -> None:
    loaded = load_model(saved(tmp_path, "squash"))
    left = gradcam(loaded, lesion(tmp_path / "left.png", (45, 40)))
    right = gradcam(loaded, lesion(tmp_path / "right.png", (240, 150), size=(300, 200)))
    assert left.heatmap.shape == (150, 200) and right.heatmap.shape == (200, 300)
    assert left.class_name == "a" and left.heatmap.min() >= 0 and left.heatmap.max() == 1
    lx, ly = centre_of_heat(left.heatmap)
    rx, ry = centre_of_heat(right.heatmap)
    assert abs(lx - 45) < 25 and abs(ly - 40) < 25
    assert abs(rx - 240) < 35 and abs(ry - 150) < 35


def test_a_chosen_class_and_the_overlay(tmp_path: Path) -> None:
    loaded = load_model(saved(tmp_path, "squash"))
    cam = gradcam(loaded, lesion(tmp_path / "a.png", (100, 75)), class_index=3)
    assert cam.class_index == 3 and cam.class_name == "d"
    image = np.full((150, 200, 3), 128, dtype=np.uint8)
    heat = np.zeros((150, 200), np.float32)
    heat[50:100, 50:100] = 1.0
    assert np.array_equal(overlay(image, heat, opacity=0.0), image)
    blended = overlay(image, heat, opacity=0.6)
    assert blended.shape == image.shape and blended.dtype == np.uint8
    assert not np.array_equal(blended[75, 75], image[75, 75])


def test_center_crop_models_leave_the_margins_cold(tmp_path: Path) -> None:
    cam = gradcam(load_model(saved(tmp_path, "center")), lesion(tmp_path / "w.png", (100, 75)))
    assert cam.heatmap.shape == (150, 200)
    assert cam.heatmap[:, :20].max() == 0 and cam.heatmap[:, -20:].max() == 0
    assert cam.heatmap[:, 40:160].max() > 0.5


@pytest.mark.parametrize("name", ["cnn", "compact", "mlp", "mobilenetv2", "vgg16"])
def test_every_model_choice_can_be_explained(tmp_path: Path, name: str) -> None:
    from core.models import build_model

    path = save_model(build_model(name, 64, 7, weights=None), tmp_path / f"{name}.keras",
                      ModelInfo(list("abcdefg"), 64, "squash", name))
    cam = gradcam(load_model(path), lesion(tmp_path / "x.png", (100, 75)))
    assert cam.heatmap.shape == (150, 200) and np.isfinite(cam.heatmap).all()
