"""An ensemble is one safe-mode model file: the mean of its members, gated, explainable."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.ensemble import build_ensemble, members
from core.model_io import ModelInfo, load_model, save_model
from core.models import build_transfer


def test_ensemble_averages_its_members_and_keeps_gate_and_gradcam_working(
        tmp_path: Path) -> None:
    from core.domain import fit_domain
    from core.gradcam import heatmap_at_input

    a = build_transfer("mobilenetv2", 96, 3, weights=None)
    b = build_transfer("mobilenetv2", 64, 3, weights=None)
    ensemble = build_ensemble([b, a])  # the input is the larger member's size
    assert ensemble.input_shape[1] == 96
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 96, 96, 3)).astype(np.uint8)
    small = np.stack([np.asarray(__import__("PIL.Image", fromlist=["Image"]).fromarray(i)
                                 .resize((64, 64))) for i in images])
    expected = (np.asarray(a(images.astype(np.float32), training=False))
                + np.asarray(b(small.astype(np.float32), training=False))) / 2
    path = save_model(ensemble, tmp_path / "ens.keras", ModelInfo(["bcc", "mel", "nv"], 96,
                                                                  "center", "ensemble"))
    loaded = load_model(path)  # safe mode
    assert len(members(loaded.model)) == 2
    x = images.astype(np.float32)  # a plain Keras call is inference: no member dropout
    np.testing.assert_array_equal(np.asarray(loaded.model(x)), np.asarray(loaded.model(x)))
    scores = loaded.classify(images, tta=False)
    np.testing.assert_allclose(scores.probabilities, expected, atol=0.02)  # resize differs
    from core.trust import score_inputs

    _, features = score_inputs(loaded.model, images)
    assert features.shape == (6, 1280)  # the first member's pooled features (member b)
    gate = fit_domain(features, images, np.array([0, 1, 2, 0, 1, 2]))
    gate.calibrate(features, images)
    assert gate.in_domain(gate.score(features, images)).all()
    cam, index = heatmap_at_input(loaded.model, images[0])
    assert index == int(np.argmax(loaded.model(images[:1].astype(np.float32))[0]))
    assert cam.shape == (96, 96)
    assert cam.max() >= 0.5  # the mean of two maps that each peak at 1
