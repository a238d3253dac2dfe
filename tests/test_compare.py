"""Paired comparison of two models (`core.compare`, `main.py compare`, the Compare dialog)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from core.classes import HAM10000_CLASSES
from core.cli import main
from core.compare import compare_models, mcnemar_exact, paired_comparison, verdict
from core.errors import CancelledError, ModelError

ROOT = Path(__file__).resolve().parents[1]
CLASSES = list(HAM10000_CLASSES)


def predictions(y_true: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Predictions that are right exactly where `right` is."""
    return np.where(right, y_true, (y_true + 1) % len(CLASSES))


def synthetic(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    y_true = np.tile(np.arange(len(CLASSES)), n // len(CLASSES) + 1)[:n]
    rng.shuffle(y_true)
    lesions = (np.arange(n) // 2).astype(str)  # 200 lesions, two images each
    return y_true, lesions, rng


def test_noise_is_not_distinguishable() -> None:
    y_true, lesions, rng = synthetic()
    right_a = rng.random(len(y_true)) < 0.7
    right_b = right_a.copy()
    flips = rng.choice(len(y_true), 6, replace=False)
    right_b[flips] = ~right_b[flips]
    result = paired_comparison(y_true, predictions(y_true, right_a),
                               predictions(y_true, right_b), CLASSES, lesions)
    assert not result.distinguishable
    assert result.sentence.endswith("not distinguishable from noise on these images.")
    assert result.a_right_b_wrong + result.a_wrong_b_right == 6
    assert result.mcnemar_p > 0.05 and result.ci_unit == "lesion" and result.n_units == 200


def test_a_clearly_better_model_is_distinguishable() -> None:
    y_true, lesions, rng = synthetic()
    right_a = rng.random(len(y_true)) < 0.6
    right_b = rng.random(len(y_true)) < 0.9
    result = paired_comparison(y_true, predictions(y_true, right_a),
                               predictions(y_true, right_b), CLASSES, lesions)
    low, high = result.delta_balanced_accuracy_ci95
    assert result.distinguishable and 0 < low <= result.delta_balanced_accuracy <= high
    assert result.mcnemar_p < 0.001
    assert "higher" in result.sentence and "p < 0.001" in result.sentence
    assert result.sentence.endswith(": the difference is distinguishable from noise.")
    for value, (lo, hi) in [*zip(result.balanced_accuracy, result.balanced_accuracy_ci95,
                                 strict=True),
                            *zip(result.melanoma_recall or (), result.melanoma_recall_ci95 or (),
                                 strict=True),
                            (result.delta_melanoma_recall, result.delta_melanoma_recall_ci95)]:
        assert lo <= value <= hi  # every CI contains its point estimate


def test_discordant_counts_and_exact_p_on_a_hand_made_example() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2, 4, 4, 5, 5])
    right_a = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1, 0], dtype=bool)
    right_b = np.array([1, 1, 0, 1, 1, 1, 1, 0, 1, 0], dtype=bool)
    assert mcnemar_exact(right_a, right_b) == (1, 4, pytest.approx(0.375))  # 2*(1+5)/32
    result = paired_comparison(y_true, predictions(y_true, right_a),
                               predictions(y_true, right_b), CLASSES, n_boot=200)
    assert (result.a_right_b_wrong, result.a_wrong_b_right) == (1, 4)
    assert (result.both_right, result.both_wrong) == (3, 2)
    assert result.ci_unit == "image"  # no lesion ids: images are resampled
    assert result.balanced_accuracy == pytest.approx((2.0 / 5, 3.5 / 5))  # mean class recall
    assert result.melanoma_recall == (0.0, 0.5)


def test_the_sentence_says_which_condition_failed() -> None:
    assert verdict(0.03, (0.01, 0.05), 0.2)[1].endswith(
        "McNemar p = 0.2 is not below 0.05 (though the CI excludes 0): not distinguishable "
        "from noise on these images.")
    assert "the CI includes 0 (though McNemar p = 0.01)" in verdict(0.03, (-0.01, 0.07), 0.01)[1]
    assert "0.052 lower (95% CI -0.083 to -0.021); McNemar p = 0.003: the difference is " \
        "distinguishable" in verdict(-0.052, (-0.083, -0.021), 0.003)[1]


class FakeModel:
    """A classifier without Keras: records the image sizes it was given."""

    runtime, training_ids = "fake", None

    def __init__(self, classes: list[str], size: int, seed: int) -> None:
        self.info = SimpleNamespace(classes=classes, image_size=size, crop="squash")
        self.seed, self.sizes = seed, []

    def uses_tta(self, tta: bool | None = None) -> bool:
        return False

    def classify(self, images: np.ndarray, tta: bool = False) -> Any:
        self.sizes.append(images.shape[1])
        proba = np.random.default_rng(self.seed).random((len(images), len(self.info.classes)))
        return SimpleNamespace(probabilities=proba)


@pytest.fixture()
def fake_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Two model files answered by `FakeModel`s, and a count of image decodes per size."""
    import core.images
    import core.inference

    files = {name: tmp_path / f"{name}.keras" for name in ("a", "b")}
    for path in files.values():
        path.write_bytes(b"")
    made: dict[str, Any] = {"models": {}, "decodes": [],
                            "spec": {"a": (CLASSES, 8), "b": (CLASSES, 8)}}
    decode = core.images.load_images

    def load_images(dataset: Any, size: int, crop: str = "squash", **kwargs: Any) -> Any:
        made["decodes"].append((size, crop))
        return decode(dataset, size, crop, **kwargs)

    def resolve(path: Path, runtime: str = "auto", status: Any = None) -> FakeModel:
        classes, size = made["spec"][path.stem]
        model = made["models"][path.stem] = FakeModel(classes, size, len(made["models"]))
        return model

    monkeypatch.setattr(core.images, "load_images", load_images)
    monkeypatch.setattr(core.inference, "resolve_model", resolve)
    made["files"] = files
    return made


def test_images_are_decoded_once_per_size(fake_models: dict[str, Any], ham_dir: Path) -> None:
    files = fake_models["files"]
    same = compare_models(files["a"], files["b"], ham_dir, n_boot=50)
    assert fake_models["decodes"] == [(8, "squash")] and same.result.n_images == 42
    fake_models["decodes"].clear()
    fake_models["spec"]["b"] = (CLASSES, 12)
    compare_models(files["a"], files["b"], ham_dir, n_boot=50)
    assert fake_models["decodes"] == [(8, "squash"), (12, "squash")]
    assert fake_models["models"]["a"].sizes == [8] and fake_models["models"]["b"].sizes == [12]


def test_a_stop_request_cancels(fake_models: dict[str, Any], ham_dir: Path) -> None:
    with pytest.raises(CancelledError):
        compare_models(fake_models["files"]["a"], fake_models["files"]["b"], ham_dir,
                       should_stop=lambda: True)


def test_models_with_different_classes_are_refused(fake_models: dict[str, Any], ham_dir: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fake_models["spec"]["b"] = (CLASSES[:6], 8)
    files = fake_models["files"]
    with pytest.raises(ModelError, match="different classes"):
        compare_models(files["a"], files["b"], ham_dir)
    assert main(["compare", str(files["a"]), str(files["b"]), "--data", str(ham_dir)]) == 2
    *progress, last = capsys.readouterr().err.strip().splitlines()
    assert last.startswith("error: the models have different classes (A: akiec, bcc, bkl, df, "
                           "mel, nv, vasc; B: akiec, bcc, bkl, df, mel, nv)")
    assert progress == ["loading a.keras", "loading b.keras"]  # progress lines, no traceback


@pytest.fixture(scope="module")
def run_b(ham_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny run (10 px, so the two models need two decodes), on the same split."""
    from core.training import TrainConfig, train

    config = TrainConfig(data_dir=str(ham_dir), model="mlp", image_size=10, epochs=1,
                         balance="none")
    return train(config, out_dir=tmp_path_factory.mktemp("run-b") / "run").run_dir


def test_compare_two_runs_on_the_first_runs_test_part(
        tiny_model: Path, run_b: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    run_a = tiny_model.parent
    assert main(["compare", str(run_a), str(run_b)]) == 0
    out = capsys.readouterr().out
    assert "McNemar exact test: A right/B wrong " in out and ", p = " in out
    assert "balanced accuracy" in out and "noise" in out.splitlines()[-1]
    assert main(["compare", str(run_a), str(run_b), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    split = pd.read_csv(run_a / "split.csv", dtype=str)
    assert data["result"]["n_images"] == int((split["subset"] == "test").sum())
    assert 0 <= data["result"]["mcnemar_p"] <= 1 and data["seen_in_training"] == [0, 0]
    assert data["part"] == f"test part of run {run_a.name}"


def test_a_missing_run_is_one_line_without_traceback(tiny_model: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "compare",
                           str(tiny_model.parent), str(tmp_path / "no-such-run")],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"error: {tmp_path / 'no-such-run'}: no such run folder or " \
        "model file"


def test_the_dialogs_paired_test_shows_the_sentence(qtbot, tiny_model: Path,
                                                    run_b: Path) -> None:
    from PySide6.QtWidgets import QApplication

    from gui.run_compare import RunCompareDialog
    from tests.gui_helpers import cut_off

    dialog = RunCompareDialog([tiny_model.parent, run_b])
    qtbot.addWidget(dialog)
    dialog.resize(1024, 700)
    dialog.show()
    panel = dialog.paired
    assert panel is not None
    dialog.tabs.setCurrentWidget(panel)
    panel.compare_button.click()
    qtbot.waitUntil(lambda: "noise" in panel.sentence.text(), timeout=60000)
    qtbot.waitUntil(lambda: panel.compare_button.isEnabled(), timeout=10000)
    assert panel.table.rowCount() >= 1 and "McNemar exact test" in panel.mcnemar.text()
    QApplication.processEvents()
    assert cut_off(dialog) == []
    dialog.reject()
