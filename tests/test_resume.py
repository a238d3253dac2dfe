"""Checkpoints every epoch: a stopped or killed run resumes where it ended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from core.errors import DatasetError
from core.runs import summarize_run
from core.training import BatchProgress, TrainConfig, resume, train
from tests.synthetic import make_image

ROOT = Path(__file__).resolve().parents[1]


def config(ham_dir: Path, epochs: int) -> TrainConfig:
    return TrainConfig(data_dir=str(ham_dir), model="mlp", image_size=8, epochs=epochs,
                       batch_size=8, balance="resample:10", seed=3)


def test_a_stopped_run_resumes_and_its_history_continues(ham_dir: Path, tmp_path: Path) -> None:
    seen: list[BatchProgress] = []
    first = train(config(ham_dir, 3), out_dir=tmp_path / "run", on_batch=seen.append,
                  should_stop=lambda: len(seen) >= 12)  # epoch 1 done, stopped in epoch 2
    assert first.stopped and [int(r["epoch"]) for r in first.history] == [1]
    assert summarize_run(first.run_dir).resumable
    resumed_batches: list[BatchProgress] = []
    second = resume(first.run_dir, on_batch=resumed_batches.append)
    assert not second.stopped
    assert resumed_batches[0].epoch == 2  # starts after the last completed epoch
    history = pd.read_csv(first.run_dir / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3]
    assert second.metrics["epochs_completed"] == 3
    assert not (first.run_dir / "checkpoint.keras").exists()  # finished: resume files removed
    with pytest.raises(DatasetError, match="already finished"):
        resume(first.run_dir)


def test_a_run_stopped_in_its_first_epoch_is_kept_unfinished_and_resumes(
        ham_dir: Path, tmp_path: Path) -> None:
    from core.runs import list_runs

    seen: list[BatchProgress] = []
    first = train(config(ham_dir, 1), out_dir=tmp_path / "runs" / "run", on_batch=seen.append,
                  should_stop=lambda: len(seen) >= 1)
    assert first.stopped and first.metrics == {"stopped": True, "unfinished": True,
                                               "epochs_completed": 0}
    assert not (first.run_dir / "model.keras").exists()  # nothing for a model picker
    assert not (first.run_dir / "metrics.json").exists()  # not evaluated
    [summary] = list_runs(tmp_path / "runs")
    assert summary.resumable and summary.damaged == "unfinished (can be resumed)"
    assert summary.balanced_accuracy is None
    second = resume(first.run_dir)
    assert not second.stopped and second.metrics["epochs_completed"] == 1
    assert 0.0 <= second.metrics["balanced_accuracy"] <= 1.0
    assert (first.run_dir / "model.keras").is_file()


def test_resume_refuses_a_changed_dataset(ham_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    subprocess.run(["cp", "-r", str(ham_dir), str(data)], check=True)
    seen: list[BatchProgress] = []
    run = train(config(data, 3), out_dir=tmp_path / "run", on_batch=seen.append,
                should_stop=lambda: len(seen) >= 12).run_dir
    csv = data / "HAM10000_metadata.csv"
    csv.write_text(csv.read_text() + "HAM_new,ISIC_7777777,mel,histo,50,male,back\n")
    make_image(data / "HAM10000_images_part_1" / "ISIC_7777777.jpg", (0, 0, 0))
    with pytest.raises(DatasetError, match="changed since run"):
        resume(run)


def test_a_run_killed_mid_training_resumes_from_its_last_epoch(ham_dir: Path,
                                                               tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [sys.executable, str(ROOT / "main.py"), "train", "--data", str(ham_dir), "--model",
            "mlp", "--image-size", "8", "--epochs", "60", "--batch-size", "4",
            "--balance", "none", "--out", str(run)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=os.environ.copy())
    state = run / "state.json"
    deadline = time.monotonic() + 240
    while not state.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (run / "metrics.json").exists()
    summary = summarize_run(run)
    assert summary.resumable and "can be resumed" in summary.damaged
    completed = len(pd.read_csv(run / "history.csv"))
    assert completed >= 1
    done = subprocess.run([*args[:2], "train", "--resume", str(run), "--json"],
                          capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == list(range(1, 61))
    assert "resuming after epoch" in done.stderr
