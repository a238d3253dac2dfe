"""One short smoke test on the real HAM10000 copy in ../shared (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

from core.dataset import load_dataset, summarize
from core.training import TrainConfig, train


def test_real_ham10000_loads_and_trains_one_short_epoch(real_ham: Path, tmp_path: Path) -> None:
    dataset = load_dataset(real_ham)
    summary = summarize(dataset)
    assert summary["n_images"] == 10015 and summary["n_lesions"] == 7470
    assert summary["per_class"]["nv"]["images"] == 6705
    assert dataset.problems == []
    config = TrainConfig(data_dir=str(real_ham), model="mlp", image_size=16, epochs=1,
                         batch_size=64, balance="resample:30")
    result = train(config, out_dir=tmp_path / "run")
    m = result.metrics
    assert m["n_images"] > 1000 and m["evaluated_on"] == "test"
    assert abs(m["majority_baseline_accuracy"] - 0.67) < 0.05  # the test part keeps nv's share
    assert m["ci_unit"] == "lesion"
    # thresholds come from the validation part: the test part, from the same clinics, passes
    assert m["out_of_domain"] <= 0.05 * m["n_images"]


def test_bundled_model_refuses_photos_and_accepts_another_clinics_lesions() -> None:
    import numpy as np
    import pytest

    from core.images import load_images, read_image
    from core.inference import resolve_model
    from tests.conftest import SHARED

    photos = sorted((SHARED / "ood-photos").glob("*.jpg"))
    if not photos or not (SHARED / "ph2").is_dir():
        pytest.skip(f"ood-photos and ph2 not found under {SHARED}")
    model = resolve_model(None)
    size, crop = model.info.image_size, model.info.crop
    refused = model.classify(np.stack([read_image(p, size, crop) for p in photos])).in_domain
    assert refused is not None and (~refused).mean() >= 0.95
    ph2 = load_images(load_dataset(SHARED / "ph2"), size, crop).images
    accepted = model.classify(ph2).in_domain
    assert accepted is not None and accepted.mean() >= 0.95


def test_the_bundled_twin_answers_like_keras_on_real_images() -> None:
    import numpy as np
    import pytest

    from core.images import read_image
    from core.model_io import load_model
    from core.paths import BUNDLED_MODEL
    from core.twin import load_twin
    from tests.conftest import SHARED

    groups = [sorted((SHARED / "ham10000" / "HAM10000_images_part_1").glob("*.jpg"))[:60],
              sorted((SHARED / "ph2").rglob("*.jpg"))[:20],
              sorted((SHARED / "ood-photos").glob("*.jpg"))[:20]]
    if any(len(g) < 20 for g in groups):
        pytest.skip(f"HAM10000, ph2 and ood-photos not found under {SHARED}")
    keras_model, twin = load_model(BUNDLED_MODEL), load_twin(BUNDLED_MODEL)
    size, crop = twin.info.image_size, twin.info.crop
    images = np.stack([read_image(p, size, crop) for g in groups for p in g])
    assert len(images) == 100
    a, b = keras_model.classify(images), twin.classify(images)  # the stored recipe: 4 views
    np.testing.assert_allclose(b.probabilities, a.probabilities, atol=1e-4)
    assert (b.probabilities.argmax(1) == a.probabilities.argmax(1)).all()
    assert a.in_domain is not None and b.in_domain is not None
    assert (a.in_domain == b.in_domain).all() and (~b.in_domain[-20:]).sum() >= 18


def test_jpeg_fast_path_gives_pillows_pixels_on_real_images(real_ham: Path) -> None:
    import numpy as np

    from core.images import read_image
    from tests.test_images import _pillow_only

    paths = list(load_dataset(real_ham).records["path"])[::20]  # 501 images
    for size, crop in ((64, "squash"), (128, "center")):
        for path in paths:
            assert np.array_equal(read_image(path, size, crop), _pillow_only(path, size, crop))


def test_real_ham10000_cross_validates_5_lesion_grouped_folds(
        real_ham: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """`train --folds 5` on a lesion-complete HAM10000 subset (up to 60 lesions a class,
    linked, not copied): mean ± SD printed, and no lesion in two folds' test parts."""
    import pandas as pd

    import core.training
    from core.cli import main

    monkeypatch.setattr(core.training, "litert_available", lambda: False)  # no twins: speed
    meta = pd.read_csv(real_ham / "HAM10000_metadata.csv")
    keep = {lesion for _, g in meta.groupby("dx")
            for lesion in sorted(g["lesion_id"].unique())[:60]}
    subset = meta[meta["lesion_id"].isin(keep)]
    ids, data = set(subset["image_id"]), tmp_path / "ham"
    for part in ("HAM10000_images_part_1", "HAM10000_images_part_2"):
        (data / part).mkdir(parents=True)
        for image in (real_ham / part).glob("*.jpg"):
            if image.stem in ids:
                (data / part / image.name).symlink_to(image)
    subset.to_csv(data / "HAM10000_metadata.csv", index=False)
    group = tmp_path / "cv"
    assert main(["train", "--data", str(data), "--model", "cnn", "--image-size", "32",
                 "--epochs", "1", "--batch-size", "64", "--balance", "resample:20",
                 "--folds", "5", "--out", str(group)]) == 0
    out = capsys.readouterr().out
    assert "balanced accuracy: " in out and "(mean ± SD over 5 folds)" in out
    tests = []
    for fold in range(1, 6):
        split = pd.read_csv(group / f"fold{fold}" / "split.csv", dtype=str)
        tests.append(set(split.loc[split["subset"] == "test", "lesion_id"]))
        assert not tests[-1] & set(split.loc[split["subset"] != "test", "lesion_id"])
    assert sum(len(t) for t in tests) == len(set().union(*tests)) == len(keep)
