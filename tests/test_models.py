"""Model builders, ImageNet weights from a local file, and safe save/load."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from core.backend import keras
from core.errors import ModelError
from core.model_io import ModelInfo, load_model, read_info, save_model
from core.models import build_model, build_vgg16, caffe_preprocessing, imagenet_backbone


@pytest.mark.parametrize(("name", "size"), [("mlp", 32), ("cnn", 32)])
def test_study_models_take_raw_uint8_images(name: str, size: int) -> None:
    model = build_model(name, size, 7)
    images = np.random.default_rng(0).integers(0, 256, (2, size, size, 3)).astype("float32")
    proba = np.asarray(model(images, training=False))
    assert proba.shape == (2, 7)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert model.layers[1].name == "scale"  # scaling lives inside the model


def test_cnn_has_the_studys_layers() -> None:
    model = build_model("cnn", 32, 7)
    convs = [layer.filters for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    drops = [layer.rate for layer in model.layers if layer.__class__.__name__ == "Dropout"]
    assert convs == [256, 128, 64] and drops == [0.3, 0.3, 0.3]


def test_caffe_preprocessing_matches_keras_applications() -> None:
    images = np.random.default_rng(1).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    expected = keras().applications.vgg16.preprocess_input(images.copy())
    got = np.asarray(caffe_preprocessing()(images))
    np.testing.assert_allclose(got, expected, atol=1e-3)


def test_vgg16_uses_a_local_weights_file(tmp_path: Path) -> None:
    reference = imagenet_backbone("vgg16", 32, weights=None)
    weights_file = tmp_path / "vgg16_notop.weights.h5"
    reference.save_weights(weights_file)
    model = build_vgg16(32, 7, weights=weights_file)
    backbone = next(layer for layer in model.layers if layer.name.startswith("vgg16"))
    assert not backbone.trainable
    for got, want in zip(backbone.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_vgg16_with_a_bad_weights_file_fails_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"nope")
    with pytest.raises(ModelError, match="not a vgg16"):
        build_vgg16(32, 7, weights=bad)
    with pytest.raises(ModelError, match="not found"):
        build_vgg16(32, 7, weights=tmp_path / "missing.h5")


def test_vgg16_download_failure_is_fast_and_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*_args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras().applications, "VGG16", offline)
    started = time.perf_counter()
    with pytest.raises(ModelError, match="--weights PATH"):
        build_vgg16(32, 7)
    assert time.perf_counter() - started < 5


def test_saved_model_reloads_and_predicts_the_same(tmp_path: Path) -> None:
    model = build_model("mlp", 8, 3)
    info = ModelInfo(classes=["bcc", "mel", "nv"], image_size=8, crop="center",
                     architecture="mlp")
    path = save_model(model, tmp_path / "m.keras", info)
    loaded = load_model(path)
    assert loaded.info == info and read_info(path) == info
    images = np.random.default_rng(2).integers(0, 256, (3, 8, 8, 3)).astype("uint8")
    np.testing.assert_allclose(loaded.predict(images),
                               np.asarray(model(images.astype("float32"))), rtol=1e-5)


def test_model_with_a_lambda_layer_is_refused(tmp_path: Path) -> None:
    k = keras()
    inputs = k.Input((8, 8, 3))
    x = k.layers.Lambda(lambda t: t * 2)(inputs)
    outputs = k.layers.Dense(7, activation="softmax")(k.layers.Flatten()(x))
    path = tmp_path / "evil.keras"
    k.Model(inputs, outputs).save(path)
    with pytest.raises(ModelError, match="could not be loaded safely"):
        load_model(path)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04garbage", b"just text"])
def test_damaged_model_files_fail_clearly(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.keras"
    path.write_bytes(content)
    with pytest.raises(ModelError):
        load_model(path)


@pytest.mark.parametrize("backbone", ["mobilenetv2", "efficientnetb0"])
def test_transfer_backbones_build_and_fine_tune_only_their_last_layers(backbone: str) -> None:
    model = build_model(backbone, 32, 7, weights=None, fine_tune=5)
    base = next(layer for layer in model.layers if hasattr(layer, "layers"))
    trainable = [layer for layer in base.layers if layer.trainable and layer.weights]
    assert trainable and all(layer in base.layers[-5:] for layer in trainable)
    assert not any(layer.trainable for layer in base.layers
                   if layer.__class__.__name__ == "BatchNormalization")
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    assert np.asarray(model(images, training=False)).shape == (2, 7)


def test_mobilenetv2_uses_a_local_weights_file(tmp_path: Path) -> None:
    reference = imagenet_backbone("mobilenetv2", 32, weights=None)
    weights_file = tmp_path / "mobilenetv2_notop.weights.h5"
    reference.save_weights(weights_file)
    model = build_model("mobilenetv2", 32, 7, weights=weights_file)
    base = next(layer for layer in model.layers if hasattr(layer, "layers"))
    np.testing.assert_array_equal(base.get_weights()[0], reference.get_weights()[0])
    assert not base.trainable


def test_compact_model_is_small_and_takes_raw_images() -> None:
    model = build_model("compact", 64, 7)
    assert model.count_params() < 300_000
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(images)).sum(axis=1), 1.0, rtol=1e-5)


def test_tta_averages_the_four_flips() -> None:
    from core.model_io import predict_probabilities

    model = build_model("mlp", 8, 3)
    images = np.random.default_rng(3).integers(0, 256, (2, 8, 8, 3)).astype("uint8")
    views = [images, images[:, :, ::-1], images[:, ::-1], images[:, ::-1, ::-1]]
    expected = np.mean([np.asarray(model(v.astype("float32"))) for v in views], axis=0)
    np.testing.assert_allclose(predict_probabilities(model, images, tta=True), expected,
                               rtol=1e-5)
    assert not np.allclose(predict_probabilities(model, images), expected)


def test_a_loaded_model_predicts_like_the_plain_model_for_any_batch(tmp_path: Path) -> None:
    model = build_model("cnn", 32, 7)
    path = save_model(model, tmp_path / "m.keras", ModelInfo(list("abcdefg"), 32))
    loaded = load_model(path)
    images = np.random.default_rng(4).integers(0, 256, (5, 32, 32, 3)).astype("uint8")
    expected = np.asarray(loaded.model(images.astype("float32"), training=False))
    np.testing.assert_allclose(loaded.predict(images[:1]), expected[:1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(loaded.predict(images, batch_size=2), expected, rtol=1e-4,
                               atol=1e-6)
