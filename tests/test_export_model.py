"""export-model: the exported model answers as the Keras model does, with its own runtime."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.errors import ModelError
from core.export_model import EXTRA_HINT, SUFFIXES, run_exported, sidecar_path
from core.model_io import load_model


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite", "onnx"])
def test_exported_model_matches_the_keras_model_and_says_how_to_use_it(
        tiny_model: Path, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"model{SUFFIXES[fmt]}"
    assert main(["export-model", "--model", str(tiny_model), "--format", fmt, "--out",
                 str(out), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["model"] == str(out) and Path(written["sidecar"]).is_file()
    loaded = load_model(tiny_model)
    images = np.random.default_rng(0).integers(0, 256, (20, 8, 8, 3)).astype(np.float32)
    expected = np.asarray(loaded.model(images, training=False))
    got = run_exported(out, fmt, images)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    meta = json.loads(sidecar_path(out, fmt).read_text())
    assert meta["format"] == fmt
    assert [c["code"] for c in meta["classes"]] == loaded.info.classes
    assert meta["classes"][4] == {"code": "mel", "name": "Melanoma"}
    assert meta["input"]["image_size"] == 8 and meta["input"]["crop"] == "squash"
    assert meta["recipe"]["temperature"] == loaded.info.temperature
    assert meta["out_of_distribution_gate"]["settings"] == loaded.info.domain


def test_export_to_an_unknown_format_is_refused_by_the_parser(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["export-model", "--format", "coreml", "--out", str(tmp_path / "m")])
    assert "invalid choice: 'coreml'" in capsys.readouterr().err


def test_onnx_without_its_converter_or_runtime_names_the_extra_to_install(
        tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # None: `import tf2onnx` fails
    out = tmp_path / "model.onnx"
    assert main(["export-model", "--model", str(tiny_model), "--format", "onnx", "--out",
                 str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: exporting as onnx needs the tf2onnx package")
    assert err.rstrip().endswith(": pip install skin-lesion-classifier[export]")
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ModelError, match=r"running onnx needs the onnxruntime package") as exc:
        run_exported(out, "onnx", np.zeros((1, 8, 8, 3), np.float32))
    assert str(exc.value).endswith(EXTRA_HINT)


def test_the_bundled_model_exports_to_every_format_with_the_same_answers_on_real_images(
        real_ham: Path, tmp_path: Path) -> None:
    from core.dataset import load_dataset
    from core.export_model import FORMATS, export_model
    from core.images import load_images
    from core.inference import resolve_model

    loaded = resolve_model(None)
    dataset = load_dataset(real_ham)
    dataset.records = dataset.records.iloc[::100].reset_index(drop=True)  # 101 images
    images = load_images(dataset, loaded.info.image_size, loaded.info.crop).images
    expected = np.asarray(loaded.model(images.astype(np.float32), training=False))
    assert len(images) == 101 and sorted(FORMATS) == ["onnx", "savedmodel", "tflite"]
    for fmt in FORMATS:  # one test: the model and the images are loaded once for all three
        out = export_model(loaded, fmt, tmp_path / f"default{SUFFIXES[fmt]}")
        got = run_exported(out, fmt, images)
        np.testing.assert_allclose(got, expected, atol=1e-4, err_msg=fmt)
        assert (got.argmax(axis=1) == expected.argmax(axis=1)).all(), fmt
