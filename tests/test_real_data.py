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
    assert 0.0 <= m["balanced_accuracy"] <= 1.0
    assert abs(m["majority_baseline_accuracy"] - 0.67) < 0.05  # the test part keeps nv's share
