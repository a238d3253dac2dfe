"""The out-of-distribution gate, calibration and the lesion bootstrap, on data built for them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.calibration import choose_temperature, expected_calibration_error, reliability
from core.domain import DomainModel, fit_domain, texture_statistics
from core.errors import ModelError
from core.metrics import balanced_accuracy_ci


def textured(n: int, seed: int, size: int = 16) -> np.ndarray:
    """Noisy images with the local contrast of the 'training' domain."""
    rng = np.random.default_rng(seed)
    return rng.integers(90, 160, (n, size, size, 3)).astype(np.uint8)


def clusters(n: int, seed: int, shift: float = 0.0, dim: int = 12) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """Three Gaussian classes in `dim` dimensions; `shift` moves every point away."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    centres = np.eye(3, dim) * 6
    x = centres[labels] + rng.normal(size=(n, dim)) + shift
    return x.astype(np.float32), labels


@pytest.fixture(scope="module")
def gate() -> DomainModel:
    x, y = clusters(600, 0)
    model = fit_domain(x, textured(600, 0), y)
    held_out, _ = clusters(300, 1)
    model.calibrate(held_out, textured(300, 1))
    return model


def test_gate_accepts_new_in_domain_points_and_refuses_far_ones(gate: DomainModel) -> None:
    inside, _ = clusters(400, 2)
    outside, _ = clusters(400, 3, shift=4.0)
    images = textured(400, 2)
    accepted = gate.in_domain(gate.score(inside, images)).mean()
    refused = (~gate.in_domain(gate.score(outside, images))).mean()
    assert accepted >= 0.95
    assert refused >= 0.99


def test_gate_refuses_a_flat_image_whose_features_look_typical(gate: DomainModel) -> None:
    typical, _ = clusters(5, 4)
    flat = np.full((5, 16, 16, 3), 128, dtype=np.uint8)
    assert gate.in_domain(gate.score(typical, textured(5, 4))).all()
    assert not gate.in_domain(gate.score(typical, flat)).any()


def test_gate_calibrated_with_shifted_views_accepts_the_shifted_device() -> None:
    """Another device moves every feature a little: the plain rule refuses many such
    images, the rule that also counts shifted views of the validation images does not,
    and it still refuses what is far away; the stored rule says which was used."""
    x, y = clusters(600, 0)
    held_out, _ = clusters(300, 1)
    shifted_held_out, _ = clusters(300, 6, shift=1.0)
    plain = fit_domain(x, textured(600, 0), y)
    plain.calibrate(held_out, textured(300, 1))
    shifted = fit_domain(x, textured(600, 0), y)
    shifted.calibrate(held_out, textured(300, 1), shifted_held_out)
    other_device, _ = clusters(400, 7, shift=1.0)
    far, _ = clusters(400, 3, shift=4.0)
    images = textured(400, 2)
    assert (~plain.in_domain(plain.score(other_device, images))).mean() >= 0.10
    assert (~shifted.in_domain(shifted.score(other_device, images))).mean() <= 0.03
    assert (~shifted.in_domain(shifted.score(far, images))).mean() >= 0.99
    again = DomainModel.from_bytes(shifted.to_bytes(), shifted.params())
    assert "shifted device" in again.params()["deep_rule"]
    assert "shifted" not in plain.params()["deep_rule"]


def test_texture_statistics_tell_flat_from_textured() -> None:
    stats = texture_statistics(np.concatenate([np.full((1, 8, 8, 3), 40, np.uint8),
                                               textured(1, 0, 8)]))
    assert stats.shape == (2, 4)
    assert (stats[0, :3] < stats[1, :3] - 3).all()  # log contrast: e-fold apart, and more


def test_gate_round_trips_through_bytes_and_refuses_damage(gate: DomainModel) -> None:
    again = DomainModel.from_bytes(gate.to_bytes(), gate.params())
    x, _ = clusters(20, 5, shift=1.0)
    images = textured(20, 5)
    np.testing.assert_allclose(again.score(x, images), gate.score(x, images), rtol=1e-5)
    with pytest.raises(ModelError, match="damaged"):
        DomainModel.from_bytes(b"not an npz", gate.params())


def test_stored_gate_and_training_ids_survive_save_and_safe_load(gate: DomainModel,
                                                                  tmp_path: Path) -> None:
    from core.backend import keras
    from core.model_io import ModelInfo, load_model, save_model

    layers = keras().layers
    inputs = keras().Input((16, 16, 3))
    x = layers.Flatten()(layers.Rescaling(1 / 255)(inputs))
    x = layers.Dense(12, activation="relu")(x)
    model = keras().Model(inputs, layers.Dense(3, activation="softmax")(x))
    path = save_model(model, tmp_path / "gated.keras", ModelInfo(["bcc", "mel", "nv"], 16),
                      gate, ["ISIC_1", "ISIC_2", "ISIC_1"])
    with zipfile.ZipFile(path) as archive:  # arrays and JSON only: nothing to unpickle
        assert {"skin_lesion_domain.npz", "skin_lesion_training_ids.txt"} <= set(
            archive.namelist())
    keras().saving.load_model(path, safe_mode=True)  # plain Keras still loads it safely
    loaded = load_model(path)
    assert loaded.domain is not None
    assert loaded.training_ids == {"ISIC_1", "ISIC_2"}
    scores = loaded.classify(textured(4, 6))
    assert scores.domain_scores is not None and scores.domain_scores.shape == (4,)
    plain = save_model(model, tmp_path / "plain.keras", ModelInfo(["bcc", "mel", "nv"], 16))
    old = load_model(plain)
    assert old.domain is None and old.training_ids is None
    assert old.classify(textured(2, 7)).in_domain is None


def test_lesion_bootstrap_is_wider_when_a_lesions_images_agree() -> None:
    # 40 lesions x 10 images; a lesion's images are all right or all wrong: images are not
    # independent, so resampling images understates the uncertainty
    rng = np.random.default_rng(0)
    lesions = np.repeat(np.arange(40), 10)
    y_true = np.repeat(rng.integers(0, 2, 40), 10)
    right = np.repeat(rng.random(40) < 0.7, 10)
    y_pred = np.where(right, y_true, 1 - y_true)
    by_image = balanced_accuracy_ci(y_true, y_pred, n_boot=400)
    by_lesion = balanced_accuracy_ci(y_true, y_pred, n_boot=400, groups=lesions.astype(str))
    assert (by_lesion[1] - by_lesion[0]) > 2 * (by_image[1] - by_image[0])


def test_expected_calibration_error_of_known_cases() -> None:
    y = np.array([0] * 9 + [1])
    honest = np.tile([0.9, 0.1], (10, 1))  # 90% sure, right 9 times in 10
    assert expected_calibration_error(y, honest) == pytest.approx(0.0, abs=1e-9)
    overconfident = np.tile([1.0, 0.0], (10, 1))
    y_half = np.array([0, 1] * 5)
    assert expected_calibration_error(y_half, overconfident) == pytest.approx(0.5)
    assert reliability(y_half, overconfident).counts.sum() == 10


def test_temperature_is_used_only_when_it_lowers_validation_ece() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 600)
    logits = rng.normal(size=(600, 3)) + 1.5 * np.eye(3)[y]
    # the true posterior is softmax(1.5 * logits); 4 * logits is overconfident by 4 / 1.5
    sharp = np.exp(4 * logits)
    sharp /= sharp.sum(axis=1, keepdims=True)
    choice = choose_temperature(y, sharp)
    assert choice.used == choice.fitted and choice.fitted == pytest.approx(4 / 1.5, rel=0.2)
    assert choice.ece_after < choice.ece_before / 2
    calibrated = np.exp(1.5 * logits) / np.exp(1.5 * logits).sum(axis=1, keepdims=True)
    assert choose_temperature(y, calibrated).fitted == pytest.approx(1.0, abs=0.2)
    single = choose_temperature(y[:1], sharp[:1])  # too little to fit: left alone
    assert single.used == 1.0
