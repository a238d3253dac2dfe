"""The command line: JSON output, clear one-line errors, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from tests.synthetic import make_image

ROOT = Path(__file__).resolve().parents[1]


def run_main(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, timeout=300, env=os.environ.copy())


def test_data_summary_json(ham_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "summary", "--data", str(ham_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_images"] == 42 and summary["n_lesions"] == 21
    assert summary["per_class"]["nv"]["images"] == 6
    assert summary["problems"] == []


def test_train_evaluate_predict_round_trip(ham_dir: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", "--data", str(ham_dir), "--model", "mlp", "--image-size", "8",
                 "--epochs", "1", "--balance", "resample:8", "--out", str(run), "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["run_dir"] == str(run)
    model = str(run / "model.keras")
    assert main(["evaluate", "--model", model, "--data", str(ham_dir), "--json", "--tta"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    low, high = metrics["balanced_accuracy_ci95"]
    assert low <= metrics["balanced_accuracy"] <= high and metrics["tta"] is True
    assert metrics["n_images"] == 42 == sum(sum(row) for row in metrics["confusion_matrix"])
    assert metrics["classes"] == ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
    assert {c: v["support"] for c, v in metrics["per_class"].items()} == dict.fromkeys(
        metrics["classes"], 6)
    assert metrics["runtime"] == "LiteRT"  # the run's twin, current since training ended
    assert main(["evaluate", "--model", model, "--data", str(ham_dir), "--json", "--tta",
                 "--runtime", "keras"]) == 0
    through_keras = json.loads(capsys.readouterr().out)
    assert through_keras["runtime"] == "Keras"
    assert through_keras["confusion_matrix"] == metrics["confusion_matrix"]
    assert through_keras["macro_auc"] == pytest.approx(metrics["macro_auc"], abs=1e-4)
    image = next((ham_dir / "HAM10000_images_part_1").glob("*.jpg"))
    assert main(["predict", "--model", model, str(image), "--json"]) == 0
    [prediction] = json.loads(capsys.readouterr().out)
    assert prediction["label"] in prediction["probabilities"]
    assert len(prediction["probabilities"]) == 7
    assert prediction["full_name"]
    assert main(["evaluate", "--model", model, "--data", str(ham_dir)]) == 0
    first_line = capsys.readouterr().out.splitlines()[0]
    assert first_line.startswith("balanced accuracy:") and "95% CI" in first_line


def test_predict_reports_a_bad_file_and_exits_non_zero(ham_dir: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    run = tmp_path / "run"
    main(["train", "--data", str(ham_dir), "--model", "mlp", "--image-size", "8", "--epochs",
          "1", "--out", str(run)])
    capsys.readouterr()
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    good = make_image(tmp_path / "ok.png", (10, 20, 30))
    assert main(["predict", "--model", str(run / "model.keras"), str(good), str(text)]) == 1
    out = capsys.readouterr().out
    assert "notes.jpg: error: notes.jpg: not an image" in out
    assert "ok.png: " in out and "not a medical device" in out


@pytest.mark.parametrize(("args", "message"), [
    (["data", "summary", "--data", "/no/such/folder"], "error: /no/such/folder is not a folder"),
    (["predict", "--model", "/no/model.keras", "x.jpg"], "error: model file not found"),
    (["evaluate", "--model", "/no/model.keras", "--data", "."], "error: model file not found"),
])
def test_errors_are_one_line_without_traceback(args: list[str], message: str) -> None:
    done = run_main(*args)
    assert done.returncode == 2
    assert done.stderr.strip().startswith(message)
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_without_a_bundled_model_predict_says_what_to_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from core import paths

    monkeypatch.setattr(paths, "BUNDLED_MODEL", tmp_path / "missing.keras")
    assert main(["predict", "x.jpg"]) == 2
    assert capsys.readouterr().err.startswith("error: no model is available: pass --model")


def test_train_rejects_bad_settings(ham_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", str(ham_dir), "--epochs", "0"]) == 2
    assert capsys.readouterr().err == "error: epochs must be between 1 and 10000, not 0\n"


def test_predict_writes_gradcam_overlays(tiny_model: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    image = make_image(tmp_path / "lesion 1.jpg", (90, 40, 30), size=(120, 90))
    out = tmp_path / "cams"
    assert main(["predict", "--model", str(tiny_model), "--gradcam", str(out), str(image)]) == 0
    written = out / "lesion 1_gradcam.png"
    assert written.is_file() and "Grad-CAM" in capsys.readouterr().out
    with Image.open(written) as png:
        assert png.size == (120, 90)


def test_app_without_a_display_says_so_in_one_line() -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, str(ROOT / "main.py")], capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: no display found")
    assert "Traceback" not in done.stderr


def test_a_runs_test_part_exports_as_an_isic_folder_that_evaluates(
        tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd
    from PIL import Image

    from core.dataset import load_dataset

    run = tiny_model.parent
    out = tmp_path / "external"
    assert main(["data", "export", "--run", str(run), "--part", "test", "--center-crop",
                 "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    split = pd.read_csv(run / "split.csv", dtype=str)
    test = split[split["subset"] == "test"]
    exported = load_dataset(out)
    assert exported.layout == "isic2018"
    assert sorted(exported.records["image_id"]) == sorted(test["image_id"])
    assert dict(zip(exported.records["image_id"], exported.records["dx"], strict=True)) == \
        dict(zip(test["image_id"], test["dx"], strict=True))
    source = load_dataset(json.loads((run / "config.json").read_text())["data_dir"]).records
    source = source.set_index("image_id").loc[exported.records["image_id"]]
    for column in ("sex", "localization", "dx_type"):  # the subgroup table needs them
        assert list(exported.records[column]) == list(source[column])
    for path in exported.records["path"]:
        with Image.open(path) as img:
            assert img.width == img.height == 15  # the synthetic frames are 20x15
    assert main(["evaluate", "--model", str(tiny_model), "--data", str(out), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert {row["column"] for row in evaluated["subgroups"]} >= {"sex", "localization"}


def test_predict_without_a_model_uses_the_bundled_default(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.model_io import read_info
    from core.paths import BUNDLED_MODEL

    info = read_info(BUNDLED_MODEL)
    assert info is not None and info.crop == "center" and info.image_size == 160
    # v3's recipe (one view, a temperature) and its gate travel in the file
    assert not info.tta and info.temperature != 1.0 and info.domain is not None
    assert BUNDLED_MODEL.stat().st_size < 50e6
    image = make_image(tmp_path / "frame.jpg", (150, 90, 60), size=(600, 450))
    assert main(["predict", str(image), "--json"]) == 0
    [prediction] = json.loads(capsys.readouterr().out)
    assert len(prediction["probabilities"]) == 7
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_exporting_a_folder_that_is_not_a_run_fails_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "split.csv").write_text("image_id,lesion_id,dx,subset\n")
    assert main(["data", "export", "--run", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "has no config.json" in capsys.readouterr().err


@pytest.mark.parametrize(("argv0", "shown"), [("/opt/venv/bin/skin-lesion", "skin-lesion"),
                                              ("main.py", "main.py")])
def test_help_names_the_command_the_user_typed(argv0: str, shown: str,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", [argv0, "--help"])
    with pytest.raises(SystemExit):
        main(["--help"])
    assert capsys.readouterr().out.startswith(f"usage: {shown} ")


@pytest.mark.parametrize("args", [["train", "--data", "/no/such/folder"],
                                  ["evaluate", "--data", "/no/such/folder"]])
def test_a_missing_data_folder_is_reported_before_tensorflow_loads(args: list[str]) -> None:
    code = ("import sys; from core.cli import main; status = main(sys.argv[1:]); "
            "print('tensorflow' in sys.modules, status)")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=os.environ.copy())
    assert done.stdout.split() == ["False", "2"]
    assert done.stderr.strip() == "error: /no/such/folder is not a folder"
