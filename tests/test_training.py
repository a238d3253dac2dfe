"""End-to-end training on a tiny synthetic dataset: run folder, stop, best epoch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.dataset import load_dataset
from core.images import load_images
from core.inference import evaluate, predict_files
from core.model_io import load_model
from core.training import BatchProgress, EpochResult, TrainConfig, train


def tiny(ham_dir: Path, **overrides) -> TrainConfig:
    settings = dict(data_dir=str(ham_dir), model="mlp", image_size=8, epochs=2, batch_size=8,
                    balance="resample:10", seed=1)
    settings.update(overrides)
    return TrainConfig(**settings)


def test_training_writes_a_complete_run_folder(ham_dir: Path, tmp_path: Path) -> None:
    epochs: list[EpochResult] = []
    batches: list[BatchProgress] = []
    result = train(tiny(ham_dir), out_dir=tmp_path / "run", on_epoch=epochs.append,
                   on_batch=batches.append)
    run = result.run_dir
    assert sorted(p.name for p in run.iterdir()) == [
        "config.json", "history.csv", "metrics.json", "model.keras", "model.tflite",
        "model.tflite.json", "predictions.csv", "split.csv", "tensorboard"]  # .tflite: the twin
    assert [e.epoch for e in epochs] == [1, 2]
    # resample:10 gives 70 training images = 9 batches of 8 per epoch
    assert batches[-1] == BatchProgress(2, 2, 9, 9)
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [1, 2] and "val_loss" in history
    assert result.best_epoch == int(history["val_loss"].idxmin()) + 1
    metrics = json.loads((run / "metrics.json").read_text())
    cm = np.array(metrics["confusion_matrix"])
    predictions = pd.read_csv(run / "predictions.csv")
    assert cm.sum() == metrics["n_images"] == len(predictions)
    assert metrics["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert metrics["accuracy"] == pytest.approx((predictions["true"]
                                                 == predictions["predicted"]).mean())
    shares = predictions["true"].value_counts(normalize=True)
    assert metrics["majority_baseline_accuracy"] == pytest.approx(shares.max())
    assert metrics["evaluated_on"] == "test" and not metrics["leaky"]
    split = pd.read_csv(run / "split.csv")
    assert (split.groupby("lesion_id")["subset"].nunique() == 1).all()
    assert metrics["n_images"] == (split["subset"] == "test").sum()
    assert json.loads((run / "config.json").read_text())["model"] == "mlp"


def test_saved_run_model_evaluates_and_predicts_consistently(ham_dir: Path,
                                                             tmp_path: Path) -> None:
    result = train(tiny(ham_dir, epochs=1), out_dir=tmp_path / "run")
    loaded = load_model(result.run_dir / "model.keras")
    assert loaded.info.image_size == 8 and len(loaded.info.classes) == 7
    assert loaded.info.trained_on["split"] == "lesion"
    stored = json.dumps(loaded.info.trained_on)  # what a model file says of its data
    assert loaded.info.trained_on["data"] == ham_dir.name and str(ham_dir.parent) not in stored
    files = sorted((ham_dir / "HAM10000_images_part_1").glob("*.jpg"))[:3]
    predictions = predict_files(loaded, files)
    dataset = load_dataset(ham_dir)
    images = load_images(dataset, 8).images
    row = dataset.records.index[dataset.records["image_id"] == files[0].stem][0]
    expected = loaded.predict(images[row:row + 1])[0]
    assert predictions[0].probabilities is not None
    np.testing.assert_allclose(list(predictions[0].probabilities.values()), expected, rtol=1e-5)
    metrics = evaluate(loaded, ham_dir)
    assert metrics["n_images"] == 42


def test_stop_takes_effect_within_one_batch(ham_dir: Path, tmp_path: Path) -> None:
    seen: list[BatchProgress] = []
    result = train(tiny(ham_dir, epochs=50), out_dir=tmp_path / "run", on_batch=seen.append,
                   should_stop=lambda: len(seen) >= 3)
    assert len(seen) == 3
    assert result.stopped and result.history == []
    # inside epoch 1 nothing was learnt: kept unfinished, not evaluated, no model to pick
    assert result.metrics["unfinished"] and not (result.run_dir / "model.keras").exists()


def test_stop_after_an_epoch_keeps_that_epoch(ham_dir: Path, tmp_path: Path) -> None:
    epochs: list[EpochResult] = []
    batches: list[BatchProgress] = []
    result = train(tiny(ham_dir, epochs=50), out_dir=tmp_path / "run", on_epoch=epochs.append,
                   on_batch=batches.append, should_stop=lambda: len(batches) >= 12)
    assert len(batches) == 12  # 9 in epoch 1, 3 in epoch 2
    assert [e.epoch for e in epochs] == [1] and result.best_epoch == 1


@pytest.mark.parametrize("balance", ["class-weights", "none"])
def test_other_balancing_modes_train(ham_dir: Path, tmp_path: Path, balance: str) -> None:
    result = train(tiny(ham_dir, epochs=1, balance=balance), out_dir=tmp_path / "run")
    assert result.metrics["train_images"] < 42  # no resampling: the training part as it is


def test_seed_leaky_protocol_is_flagged(ham_dir: Path, tmp_path: Path) -> None:
    messages: list[str] = []
    result = train(tiny(ham_dir, epochs=1, split="seed-leaky", balance="resample:20"),
                   out_dir=tmp_path / "run", on_status=messages.append)
    assert result.metrics["leaky"] and result.metrics["evaluated_on"] == "val"
    assert result.metrics["train_images"] + result.metrics["val_images"] == 140
    assert any("inflated" in m for m in messages)


def test_runs_default_to_the_per_user_folder(ham_dir: Path, isolated_home: Path) -> None:
    result = train(tiny(ham_dir, epochs=1))
    assert result.run_dir.parent == isolated_home / "data" / "runs"


def test_our_training_options_run_together(ham_dir: Path, tmp_path: Path) -> None:
    config = tiny(ham_dir, model="compact", image_size=16, epochs=3, augment=True,
                  label_smoothing=0.1, lr_schedule="cosine", early_stopping=1,
                  balance="class-weights")
    result = train(config, out_dir=tmp_path / "run")
    history = result.history
    assert 1 <= len(history) <= 3
    if result.metrics["early_stopped"]:
        assert len(history) - (result.best_epoch or 0) >= 1
    assert not result.stopped


@pytest.mark.parametrize(("monitor", "pick"), [("val_loss", min),
                                              ("val_balanced_accuracy", max)])
def test_the_kept_epoch_is_the_best_by_the_chosen_measure(ham_dir: Path, tmp_path: Path,
                                                         monitor: str, pick: Any) -> None:
    result = train(tiny(ham_dir, epochs=4, monitor=monitor, learning_rate=0.01),
                   out_dir=tmp_path / "run")
    values = [row[monitor] for row in result.history]
    best = values.index(pick(values)) + 1
    assert result.best_epoch == best
    assert result.metrics["best_epoch"] == best


@pytest.mark.parametrize(("field", "value", "message"), [
    ("lr_schedule", "step", "schedule"), ("label_smoothing", 1.5, "label smoothing"),
    ("fine_tune", -1, "fine-tune layers must be between 0 and 1000"),
    ("fine_tune", 3, "--fine-tune does not apply to the mlp model"),
    ("weights", "w.h5", "--weights does not apply to the mlp model"),
    ("model", "resnet", "unknown model"), ("monitor", "accuracy", "unknown monitor"),
    ("val_fraction", 0.5, "validation part must be between"),
])
def test_bad_settings_are_refused_before_any_work(ham_dir: Path, field: str, value: object,
                                                  message: str) -> None:
    from core.errors import DatasetError

    with pytest.raises(DatasetError, match=message):
        train(tiny(ham_dir, **{field: value}))


def test_a_run_can_start_from_another_runs_weights(ham_dir: Path, tmp_path: Path) -> None:
    from core.errors import DatasetError
    from core.model_io import load_model

    first = train(tiny(ham_dir, epochs=1), out_dir=tmp_path / "a")
    source = first.run_dir / "model.keras"
    messages: list[str] = []
    second = train(tiny(ham_dir, epochs=1, init_from=str(source), learning_rate=1e-9),
                   out_dir=tmp_path / "b", on_status=messages.append)
    assert any("starting from the weights" in m for m in messages)
    before = load_model(source).model.get_weights()
    after = load_model(second.run_dir / "model.keras").model.get_weights()
    for a, b in zip(before, after, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)  # a learning rate of 1e-9 barely moves
    with pytest.raises(DatasetError, match="cannot start from"):
        train(tiny(ham_dir, model="cnn", image_size=32, init_from=str(source)),
              out_dir=tmp_path / "c")
