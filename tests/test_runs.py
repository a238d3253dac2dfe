"""The run library lists finished, stopped and damaged runs without breaking."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import SkinLesionError
from core.runs import delete_run, list_runs, read_run
from core.training import TrainConfig, train


def test_runs_are_listed_read_and_deleted(ham_dir: Path, isolated_home: Path) -> None:
    config = TrainConfig(data_dir=str(ham_dir), model="mlp", image_size=8, epochs=1,
                         balance="none")
    result = train(config)
    broken = isolated_home / "data" / "runs" / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    runs = {r.name: r for r in list_runs()}
    good = runs[result.run_dir.name]
    assert good.model == "mlp" and not good.damaged
    assert good.balanced_accuracy == pytest.approx(result.metrics["balanced_accuracy"])
    assert "config.json unreadable" in runs["broken"].damaged
    details = read_run(result.run_dir)
    assert details.predictions is not None
    assert len(details.predictions) == result.metrics["n_images"]
    assert list(details.history["epoch"]) == [1]
    with pytest.raises(SkinLesionError, match="damaged"):
        read_run(broken)
    delete_run(result.run_dir)
    assert result.run_dir.name not in {r.name for r in list_runs()}


def test_delete_refuses_folders_that_are_not_runs(tmp_path: Path) -> None:
    with pytest.raises(SkinLesionError, match="does not look like a run"):
        delete_run(tmp_path)
    assert tmp_path.exists()
