"""Training does what it says: it learns, class weights and augmentation act, stops keep work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from core.training import TrainConfig, train
from tests.synthetic import CLASS_COLOURS, make_ham, make_image

ROOT = Path(__file__).resolve().parents[1]


def test_training_on_separable_classes_ends_far_above_chance(tmp_path: Path) -> None:
    data = make_ham(tmp_path / "ham", per_class=12, images_per_lesion=1)  # a colour per class
    config = TrainConfig(data_dir=str(data), model="mlp", image_size=8, epochs=25,
                         batch_size=8, learning_rate=0.01, balance="none", seed=3)
    result = train(config, out_dir=tmp_path / "run")
    assert result.metrics["n_images"] >= 7
    assert result.metrics["balanced_accuracy"] >= 0.6  # chance is 1/7
    first, last = result.history[0], result.history[-1]
    assert last["loss"] < 0.7 * first["loss"]


def test_class_weights_change_the_loss(tmp_path: Path) -> None:
    for i in range(24):  # 24 benign against 4 malignant images
        make_image(tmp_path / "data" / "benign" / f"b{i}.png", CLASS_COLOURS["nv"], seed=i)
    for i in range(4):
        make_image(tmp_path / "data" / "malignant" / f"m{i}.png", CLASS_COLOURS["mel"],
                   seed=100 + i)
    losses = {}
    for balance in ("none", "class-weights"):
        config = TrainConfig(data_dir=str(tmp_path / "data"), model="mlp", image_size=8,
                             epochs=1, batch_size=4, balance=balance, seed=5,
                             val_fraction=0.2, test_fraction=0.2)
        losses[balance] = train(config, out_dir=tmp_path / balance).history[0]["loss"]
    assert abs(losses["none"] - losses["class-weights"]) > 1e-3


def test_augmentation_changes_the_batches_and_plain_batches_stay_as_they_are() -> None:
    from core.pipeline import make_dataset

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 16, 16, 3)).astype(np.uint8)
    labels = np.arange(8) % 2
    plain = np.concatenate([x.numpy() for x, _ in make_dataset(images, labels, 2, 4, None)])
    np.testing.assert_array_equal(plain, images.astype(np.float32))
    augmented = make_dataset(images, labels, 2, 8, None, augment=True)
    first = next(iter(augmented))[0].numpy()
    second = next(iter(augmented))[0].numpy()
    assert first.shape == images.shape
    assert np.abs(first - images).mean() > 5  # flips, rotations, zoom, colour
    assert not np.allclose(first, second)  # new random draws each pass


def test_ctrl_c_on_the_cli_keeps_the_best_epoch(ham_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [sys.executable, str(ROOT / "main.py"), "train", "--data", str(ham_dir), "--model",
            "mlp", "--image-size", "8", "--epochs", "200", "--batch-size", "4",
            "--balance", "none", "--out", str(run), "--json"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, env=os.environ.copy())
    deadline = time.monotonic() + 240
    while not (run / "state.json").exists() and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=240)
    assert process.returncode == 0
    result = json.loads(out)
    assert result["stopped"] is True and result["best_epoch"] >= 1
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["stopped"] is True and metrics["best_epoch"] == result["best_epoch"]
    assert metrics["epochs_completed"] < 200
    assert (run / "model.keras").is_file() and (run / "checkpoint.keras").is_file()


def test_a_frozen_backbone_run_resumes_in_feature_cache_mode(ham_dir: Path,
                                                            tmp_path: Path) -> None:
    from core.models import imagenet_backbone
    from core.training import resume

    weights = tmp_path / "mobilenetv2_notop.weights.h5"
    imagenet_backbone("mobilenetv2", 32, weights=None).save_weights(weights)
    config = TrainConfig(data_dir=str(ham_dir), model="mobilenetv2", image_size=32, epochs=3,
                         batch_size=8, balance="none", weights=str(weights))
    epochs: list[int] = []
    first = train(config, out_dir=tmp_path / "run", on_epoch=lambda e: epochs.append(e.epoch),
                  should_stop=lambda: len(epochs) >= 1)
    assert first.stopped and first.metrics["feature_cache"] is True
    messages: list[str] = []
    done = resume(first.run_dir, on_epoch=lambda e: epochs.append(e.epoch),
                  on_status=messages.append)
    assert not done.stopped and done.metrics["feature_cache"] is True
    assert epochs == [1, 2, 3]
    assert any("resuming after epoch 1" in m for m in messages)
    assert any("read from the cache" in m for m in messages)
    assert [row["epoch"] for row in done.history] == [1.0, 2.0, 3.0]


def test_a_failing_training_shows_its_error_in_the_train_view(qtbot, tmp_path: Path) -> None:
    from gui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    view = window.train_view
    (tmp_path / "empty").mkdir()
    view.set_dataset(str(tmp_path / "empty"))
    view.start_clicked()
    qtbot.waitUntil(lambda: not view.is_running(), timeout=60000)
    assert view.epoch_bar.format() == "Did not finish (see the log)"
    log = view.log.toPlainText()
    assert "Training did not finish:" in log and "holds no dataset" in log
    assert view.start_button.isEnabled()
