"""`train --stream`: the same pixels, labels and order as the in-memory path, and a whole run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.dataset import load_dataset
from core.domain import texture_statistics
from core.images import load_images
from core.pipeline import make_dataset, make_split
from core.stream import StreamedImages, stream_images
from core.training import TrainConfig, resume, train
from tests.synthetic import make_ham, make_image


def batches(ds) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture(scope="module")
def mixed_ham(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HAM-layout set whose images differ in size and aspect (crops differ), one of them
    unreadable (dropped alike by both paths)."""
    root = make_ham(tmp_path_factory.mktemp("mixed"), per_class=5)
    for i, path in enumerate(sorted(root.rglob("*.jpg"))[::3]):
        make_image(path, (40 * (i % 6), 90, 200 - 20 * (i % 9)), size=(30 + 7 * i, 22 + 3 * i),
                   seed=i)
    sorted(root.rglob("*.jpg"))[4].write_bytes(b"not a jpeg")
    return root


@pytest.mark.parametrize("crop", ["squash", "center"])
@pytest.mark.parametrize("use_cache", [True, False])
def test_streamed_pipeline_gives_the_in_memory_pixels_labels_and_order(
        mixed_ham: Path, crop: str, use_cache: bool) -> None:
    in_memory = load_dataset(mixed_ham)
    images = load_images(in_memory, 24, crop, use_cache=False).images
    streamed_set = load_dataset(mixed_ham)
    streamed = stream_images(streamed_set, 24, crop, use_cache=use_cache)
    assert len(streamed) == len(images) == len(in_memory.records) == 34  # 35 minus 1 unreadable
    assert list(streamed_set.records["image_id"]) == list(in_memory.records["image_id"])
    assert [p.kind for p in streamed_set.problems] == [p.kind for p in in_memory.problems]
    assert (streamed.files.fd is not None) == use_cache

    labels = in_memory.records["dx"].map({c: i for i, c in enumerate(in_memory.classes)})
    labels = labels.to_numpy()
    config = TrainConfig(data_dir=str(mixed_ham), balance="resample:9", seed=3)
    split = make_split(config, in_memory.records, labels, lambda _m: None)
    assert len(split.train) == 63 and len(np.unique(split.train)) < 63  # resampled by index
    for seed in (None, 5):  # unshuffled, and shuffled with the same seed
        x_mem, y_mem = batches(make_dataset(images[split.train], labels[split.train], 7, 8, seed))
        x_str, y_str = batches(make_dataset(streamed[split.train], labels[split.train], 7, 8,
                                            seed))
        assert x_str.dtype == np.float32 and x_str.shape == (63, 24, 24, 3)
        assert np.abs(x_str - x_mem).max() == 0 and np.array_equal(y_str, y_mem)

    # what the gate and the evaluation read: slices of a view
    test = streamed[split.test]
    assert np.array_equal(test[0:len(test)], images[split.test])
    assert np.array_equal(texture_statistics(test), texture_statistics(images[split.test]))


def test_a_second_stream_reads_the_cache_and_shares_it_with_the_in_memory_load(
        ham_dir: Path) -> None:
    first = stream_images(load_dataset(ham_dir), 16)
    progress: list[tuple[int, int]] = []
    again = stream_images(load_dataset(ham_dir), 16, on_progress=lambda *a: progress.append(a))
    assert progress == [(42, 42)]  # no decoding: one step to the end
    in_memory = load_images(load_dataset(ham_dir), 16)
    assert in_memory.from_cache  # the stream's pass wrote the cache load_images reads
    assert np.array_equal(again[0:42], in_memory.images)
    assert np.array_equal(first[np.arange(42)][5:9], in_memory.images[5:9])
    assert isinstance(first[np.array([3, 1])], StreamedImages)


def test_a_streamed_run_records_stream_and_matches_the_in_memory_run(ham_dir: Path,
                                                                     tmp_path: Path) -> None:
    settings = dict(data_dir=str(ham_dir), model="mlp", image_size=8, epochs=2, batch_size=8,
                    balance="resample:10", seed=1)
    memory = train(TrainConfig(**settings), out_dir=tmp_path / "memory")
    streamed = train(TrainConfig(**settings, stream=True), out_dir=tmp_path / "stream")
    assert json.loads((streamed.run_dir / "config.json").read_text())["stream"] is True
    assert json.loads((memory.run_dir / "config.json").read_text())["stream"] is False
    a = pd.read_csv(memory.run_dir / "predictions.csv")
    b = pd.read_csv(streamed.run_dir / "predictions.csv")
    assert list(a["image_id"]) == list(b["image_id"]) and len(a) == memory.metrics["n_images"]
    # same images, order and seeds: the same training (augmentation's parallel random draws
    # differ between any two runs, in memory too, so it is left out here)
    np.testing.assert_allclose(a["confidence"], b["confidence"], atol=1e-6)
    assert streamed.metrics["out_of_domain"] == memory.metrics["out_of_domain"]


def test_a_streamed_run_with_augmentation_and_class_weights_resumes(ham_dir: Path,
                                                                    tmp_path: Path) -> None:
    epochs: list[int] = []
    config = TrainConfig(data_dir=str(ham_dir), model="mlp", image_size=8, epochs=2,
                         batch_size=8, balance="class-weights", augment=True, stream=True)
    first = train(config, out_dir=tmp_path / "run", on_epoch=lambda e: epochs.append(e.epoch),
                  should_stop=lambda: len(epochs) >= 1)
    assert first.stopped
    done = resume(first.run_dir, on_epoch=lambda e: epochs.append(e.epoch))
    assert not done.stopped and epochs == [1, 2]


def test_a_streamed_frozen_backbone_uses_the_feature_cache(ham_dir: Path,
                                                           tmp_path: Path) -> None:
    from core.models import imagenet_backbone

    weights = tmp_path / "mobilenetv2_notop.weights.h5"
    imagenet_backbone("mobilenetv2", 32, weights=None).save_weights(weights)
    settings = dict(data_dir=str(ham_dir), model="mobilenetv2", image_size=32, epochs=1,
                    batch_size=8, balance="none", weights=str(weights))
    messages: list[str] = []
    streamed = train(TrainConfig(**settings, stream=True), out_dir=tmp_path / "s",
                     on_status=messages.append)
    assert streamed.metrics["feature_cache"] is True
    assert any("features computed" in m for m in messages)
    messages.clear()
    train(TrainConfig(**settings), out_dir=tmp_path / "m", on_status=messages.append)
    assert any("read from the cache" in m for m in messages)  # the same features


def test_an_image_that_breaks_during_a_streamed_run_is_named(ham_dir: Path,
                                                             tmp_path: Path) -> None:
    root = tmp_path / "ham"
    shutil.copytree(ham_dir, root)
    dataset = load_dataset(root)
    streamed = stream_images(dataset, 8, use_cache=False)
    victim = Path(dataset.records["path"].iloc[2])
    victim.write_bytes(b"broken")
    from core.errors import DatasetError

    with pytest.raises(DatasetError, match=f"{victim.name}.*readable when training started"):
        streamed[0:5]


def test_the_settings_turn_streaming_on_for_a_dataset_too_large_for_memory(qtbot) -> None:
    from gui.train_settings import STREAM_ABOVE_BYTES
    from gui.train_view import TrainView

    view = TrainView()
    qtbot.addWidget(view)
    settings = view.settings
    settings.select(settings.model_box, "cnn")
    settings.size_spin.setValue(128)
    per_image = 128 * 128 * 3
    view.set_dataset("SMALL", STREAM_ABOVE_BYTES // per_image)  # just fits
    assert not settings.stream_check.isChecked() and settings.stream_note.isHidden()
    view.set_dataset("LARGE", STREAM_ABOVE_BYTES // per_image + 1)
    assert settings.stream_check.isChecked() and view.config().stream is True
    assert not settings.stream_note.isHidden()
    assert "images at 128 px decode to 1.0 GiB" in settings.stream_note.text()
    settings.size_spin.setValue(64)  # a quarter of the pixels: back in memory
    assert not settings.stream_check.isChecked() and settings.stream_note.isHidden()
    settings.size_spin.setValue(128)
    assert settings.stream_check.isChecked()
    settings.stream_check.setChecked(False)  # the user's choice is kept
    settings.size_spin.setValue(160)
    assert not settings.stream_check.isChecked() and settings.stream_note.isHidden()
    view.set_dataset("SMALL", 100)
    assert not settings.stream_check.isChecked()
