"""Frozen transfer models train their head on backbone features computed once and cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.dataset import load_dataset
from core.images import load_images
from core.model_io import load_model
from core.models import imagenet_backbone
from core.training import TrainConfig, train


@pytest.fixture(scope="module")
def backbone_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stand-in 'ImageNet' weights: a random MobileNetV2 backbone saved to a file."""
    path = tmp_path_factory.mktemp("weights") / "mobilenetv2_notop.weights.h5"
    imagenet_backbone("mobilenetv2", 32, weights=None).save_weights(path)
    return path


def config(ham_dir: Path, weights: Path, **overrides: object) -> TrainConfig:
    settings: dict = dict(data_dir=str(ham_dir), model="mobilenetv2", image_size=32,
                          epochs=2, batch_size=8, balance="none", weights=str(weights))
    settings.update(overrides)
    return TrainConfig(**settings)


def test_frozen_backbone_features_are_cached_and_the_saved_model_is_whole(
        ham_dir: Path, tmp_path: Path, backbone_weights: Path) -> None:
    messages: list[str] = []
    first = train(config(ham_dir, backbone_weights), out_dir=tmp_path / "a",
                  on_status=messages.append)
    assert first.metrics["feature_cache"] is True
    assert any("features computed" in m for m in messages)
    messages.clear()
    train(config(ham_dir, backbone_weights), out_dir=tmp_path / "b", on_status=messages.append)
    assert any("read from the cache" in m for m in messages)

    # The saved model is the full image model: on raw test images it reproduces the run.
    loaded = load_model(first.run_dir / "model.keras")
    dataset = load_dataset(ham_dir)
    images = load_images(dataset, 32).images
    split = pd.read_csv(first.run_dir / "split.csv")
    test = np.flatnonzero(split["subset"].to_numpy() == "test")
    saved = pd.read_csv(first.run_dir / "predictions.csv")
    proba = loaded.predict(images[test])
    np.testing.assert_allclose(proba.max(axis=1), saved["confidence"], atol=2e-3)


def test_augmentation_or_fine_tuning_use_the_normal_path(ham_dir: Path, tmp_path: Path,
                                                         backbone_weights: Path) -> None:
    result = train(config(ham_dir, backbone_weights, epochs=1, fine_tune=3),
                   out_dir=tmp_path / "ft")
    assert result.metrics["feature_cache"] is False
