"""Pure model-builder functions: the study's MLP, CNN and VGG16 transfer model.

Every model takes raw RGB images (uint8 values 0-255, already resized by `core.images`):
scaling happens inside the model, so a saved model needs nothing else to be used.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.backend import keras
from core.errors import ModelError

# keras.applications' VGG16 expects "caffe" preprocessing: BGR order minus the ImageNet mean.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)
DOWNLOAD_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ModelSpec:
    """A model choice: its builder and the study's defaults for it."""

    name: str
    title: str
    builder: Callable[..., Any]
    image_size: int
    uses_imagenet: bool = False


def build_mlp(image_size: int = 32, n_classes: int = 7) -> Any:
    """The study's MLP: Dense 256-128-64 applied per pixel, Flatten, Dense 32, softmax."""
    layers = keras().layers
    inputs = keras().Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255, name="scale")(inputs)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(32, activation="relu")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras().Model(inputs, outputs, name="mlp")


def build_cnn(image_size: int = 32, n_classes: int = 7) -> Any:
    """The study's CNN: Conv 256-128-64 (3x3), each with 2x2 max-pool and Dropout 0.3."""
    layers = keras().layers
    inputs = keras().Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255, name="scale")(inputs)
    for filters in (256, 128, 64):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(0.3)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(32, activation="relu")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras().Model(inputs, outputs, name="cnn")


def caffe_preprocessing(name: str = "imagenet_caffe") -> Any:
    """RGB 0-255 to VGG's BGR-minus-mean input, as a frozen 1x1 convolution.

    A plain layer (not a Lambda) so the saved model loads in Keras' safe mode.
    """
    layer = keras().layers.Conv2D(3, 1, name=name, trainable=False)
    layer.build((None, None, None, 3))
    flip = np.zeros((1, 1, 3, 3), dtype="float32")
    for rgb, bgr in ((0, 2), (1, 1), (2, 0)):
        flip[0, 0, rgb, bgr] = 1.0
    layer.set_weights([flip, -np.asarray(IMAGENET_BGR_MEAN, dtype="float32")])
    return layer


def vgg16_backbone(image_size: int, weights: str | Path | None = "imagenet") -> Any:
    """VGG16 without its top, with ImageNet weights from keras.applications or a local file.

    `weights` may be "imagenet" (download, cached by Keras), a path to a weights file
    (`.h5` / `.weights.h5`, no top), or None (random; only for tests).
    """
    applications = keras().applications
    if weights is None:
        return applications.VGG16(include_top=False, weights=None,
                                  input_shape=(image_size, image_size, 3))
    if weights != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ModelError(f"VGG16 weights file not found: {path}")
        try:
            return applications.VGG16(include_top=False, weights=str(path),
                                      input_shape=(image_size, image_size, 3))
        except Exception as exc:  # Keras raises ValueError/OSError variants for bad files
            raise ModelError(f"{path.name} is not a VGG16 (no top) weights file: {exc}") from exc
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return applications.VGG16(include_top=False, weights="imagenet",
                                  input_shape=(image_size, image_size, 3))
    except Exception as exc:  # no network, proxy, TLS, or a broken cached file
        raise ModelError(
            "could not get the ImageNet weights for VGG16 (download failed: "
            f"{str(exc).splitlines()[0][:160]}); connect to the internet once, or pass "
            "--weights PATH to vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
        ) from exc
    finally:
        socket.setdefaulttimeout(previous)


def build_vgg16(image_size: int = 150, n_classes: int = 7,
                weights: str | Path | None = "imagenet") -> Any:
    """The study's transfer model: frozen VGG16 (ImageNet), Flatten, Dense softmax."""
    layers = keras().layers
    backbone = vgg16_backbone(image_size, weights)
    backbone.trainable = False
    inputs = keras().Input((image_size, image_size, 3), name="image")
    x = caffe_preprocessing()(inputs)
    x = backbone(x, training=False)
    x = layers.Flatten()(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras().Model(inputs, outputs, name="vgg16_transfer")


MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec("mlp", "MLP (study)", build_mlp, 32),
    "cnn": ModelSpec("cnn", "CNN (study)", build_cnn, 32),
    "vgg16": ModelSpec("vgg16", "VGG16 transfer, frozen (study)", build_vgg16, 150,
                       uses_imagenet=True),
}


def build_model(name: str, image_size: int, n_classes: int,
                weights: str | Path | None = "imagenet") -> Any:
    """Build the model called `name` (see `MODELS`)."""
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    spec = MODELS[name]
    if spec.uses_imagenet:
        return spec.builder(image_size, n_classes, weights=weights)
    return spec.builder(image_size, n_classes)
