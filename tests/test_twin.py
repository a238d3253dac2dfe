"""LiteRT twins: same answers as Keras, never trusted when stale or damaged, no TensorFlow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import ModelError
from core.model_io import LoadedModel, load_model, package_model
from core.twin import TwinModel, check_twin, load_twin, open_model, sidecar_of
from tests.synthetic import CLASS_COLOURS, make_image

ROOT = Path(__file__).resolve().parents[1]


def colour_images(size: int, seed: int = 0) -> np.ndarray:
    """Noisy one-colour images of every class, plus a grey one."""
    rng = np.random.default_rng(seed)
    colours = [*CLASS_COLOURS.values(), (128, 128, 128)]
    base = np.array(colours, np.int16)[:, None, None, :]
    noise = rng.integers(-25, 26, (len(colours), size, size, 3))
    return (base + noise).clip(0, 255).astype(np.uint8)


@pytest.fixture()
def model_copy(tiny_model: Path, tmp_path: Path) -> Path:
    """The tiny trained model and its twin, copied so a test may spoil them."""
    target = tmp_path / "copy" / "model.keras"
    target.parent.mkdir()
    for source in (tiny_model, tiny_model.with_suffix(".tflite"),
                   sidecar_of(tiny_model.with_suffix(".tflite"))):
        shutil.copy(source, target.parent / source.name)
    return target


def test_a_trained_model_gets_a_twin_that_answers_like_keras(tiny_model: Path) -> None:
    assert check_twin(tiny_model).twin == tiny_model.with_suffix(".tflite")
    keras_model, twin = load_model(tiny_model), load_twin(tiny_model)
    assert twin.runtime == "LiteRT" and keras_model.runtime == "Keras"
    images = colour_images(twin.info.image_size)
    for tta in (False, True):
        a, b = keras_model.classify(images, tta=tta), twin.classify(images, tta=tta)
        np.testing.assert_allclose(b.probabilities, a.probabilities, atol=1e-4)
        assert (b.probabilities.argmax(1) == a.probabilities.argmax(1)).all()
        assert a.domain_scores is not None and b.domain_scores is not None
        np.testing.assert_allclose(b.domain_scores, a.domain_scores, rtol=1e-3, atol=1e-4)
        assert (a.in_domain == b.in_domain).all()


def test_an_int8_twin_answers_by_default_and_the_float_one_stays_selectable(
        model_copy: Path) -> None:
    from core.twin import build_twin

    keras_model = load_model(model_copy)
    images = colour_images(keras_model.info.image_size)
    int8 = build_twin(keras_model, calibration=colour_images(keras_model.info.image_size, 1))
    assert int8 == model_copy.with_suffix(".int8.tflite")
    assert json.loads(sidecar_of(int8).read_text())["precision"] == "int8"
    assert int8.stat().st_size < 0.6 * model_copy.with_suffix(".tflite").stat().st_size
    chosen, float_twin = open_model(model_copy), open_model(model_copy, "litert-float")
    assert (chosen.runtime, float_twin.runtime) == ("LiteRT int8", "LiteRT")
    a, b = float_twin.classify(images), chosen.classify(images)
    assert (a.probabilities.argmax(1) == b.probabilities.argmax(1)).mean() >= 0.75
    np.testing.assert_allclose(b.probabilities, a.probabilities, atol=0.1)
    int8.write_bytes(int8.read_bytes()[:-8])  # a damaged int8 twin: the float one answers
    assert open_model(model_copy, "litert").runtime == "LiteRT"


def test_a_stale_twin_is_refused_then_rebuilt_when_keras_loads(model_copy: Path) -> None:
    twin = model_copy.with_suffix(".tflite")
    package_model(model_copy, model_copy, card="changed")  # the .keras file changes
    found = check_twin(model_copy)
    assert found.twin is None and found.problem == (
        "model.tflite is stale: model.keras changed since")
    with pytest.raises(ModelError, match="stale"):
        open_model(model_copy, "litert")
    notes: list[str] = []
    answered = open_model(model_copy, "auto", notes.append)
    assert isinstance(answered, LoadedModel)  # Keras answered this time
    assert notes[0] == "using Keras: model.tflite is stale: model.keras changed since"
    assert check_twin(model_copy).twin == twin  # and the twin is current again
    assert isinstance(open_model(model_copy, "auto"), TwinModel)


def test_a_damaged_twin_is_refused_and_keras_answers(model_copy: Path) -> None:
    twin = model_copy.with_suffix(".tflite")
    twin.write_bytes(twin.read_bytes()[:1000])
    assert "is damaged" in check_twin(model_copy).problem
    # a forged sidecar that matches the broken file: the interpreter still refuses it
    meta = json.loads(sidecar_of(twin).read_text())
    meta["twin_sha256"] = __import__("hashlib").sha256(twin.read_bytes()).hexdigest()
    sidecar_of(twin).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="could not be run by LiteRT"):
        load_twin(model_copy)
    sidecar_of(twin).write_text("{not json")
    assert "unreadable sidecar" in check_twin(model_copy).problem
    assert isinstance(open_model(model_copy, "auto"), LoadedModel)


def test_runtime_keras_ignores_the_twin_and_litert_says_why_it_cannot(model_copy: Path) -> None:
    assert isinstance(open_model(model_copy, "keras"), LoadedModel)
    model_copy.with_suffix(".tflite").unlink()
    sidecar_of(model_copy.with_suffix(".tflite")).unlink()
    with pytest.raises(ModelError, match="model.keras has no LiteRT twin"):
        open_model(model_copy, "litert")
    with pytest.raises(ModelError, match="unknown runtime 'fast'"):
        open_model(model_copy, "fast")


def test_a_read_only_model_folder_gets_its_twin_in_the_cache(
        model_copy: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("model.tflite", "model.tflite.json"):
        (model_copy.parent / name).unlink()
    writable = os.access  # like an installed package's folder (tests may run as root)
    monkeypatch.setattr(os, "access", lambda p, mode: writable(p, mode) and (
        Path(p) != model_copy.parent or mode != os.W_OK))
    open_model(model_copy, "auto")
    twin = check_twin(model_copy).twin
    assert twin is not None and twin.parent == isolated_home / "cache" / "twins"
    assert not (model_copy.parent / "model.tflite").exists()
    assert isinstance(open_model(model_copy, "auto"), TwinModel)


BLOCK_TF = ("import sys\n"
            "sys.modules['tensorflow'] = None; sys.modules['keras'] = None  # imports now fail\n"
            "from core.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")


def test_predict_on_the_litert_path_never_imports_tensorflow(tiny_model: Path,
                                                             tmp_path: Path) -> None:
    image = make_image(tmp_path / "mel.png", CLASS_COLOURS["mel"])
    out = subprocess.run([sys.executable, "-c", BLOCK_TF, "predict", "--model", str(tiny_model),
                          "--json", str(image)], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "answered by LiteRT" in out.stderr
    [row] = json.loads(out.stdout)
    from core.inference import predict_files

    [expected] = predict_files(tiny_model, [image])  # the Keras path, in this process
    assert row["label"] == expected.label
    assert row["probabilities"] == pytest.approx(expected.probabilities, abs=1e-4)
    assert row["in_domain"] == expected.in_domain


def test_the_bundled_model_ships_a_current_twin() -> None:
    from core.paths import BUNDLED_MODEL

    found = check_twin(BUNDLED_MODEL)
    assert found.twin == BUNDLED_MODEL.with_suffix(".tflite"), found.problem
    twin = load_twin(BUNDLED_MODEL)
    # the recipe (v3: one view, a temperature) and the gate come along
    assert not twin.info.tta and twin.info.temperature != 1.0 and twin.domain is not None


ONLY_CLASSIFY_PACKAGES = (
    "import sys, importlib.metadata as md\n"
    "wanted = {l.split('==')[0].lower().replace('_', '-') for l in open(sys.argv[1]) "
    "if l.strip() and not l.startswith('#')}\n"
    "allowed = {top for top, dists in md.packages_distributions().items() "
    "if any(d.lower().replace('_', '-') in wanted for d in dists)} | {'core'}\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        top = name.split('.')[0]\n"
    "        if top not in allowed and top not in sys.stdlib_module_names:\n"
    "            raise ImportError(f'{top} is not in requirements-classify.txt')\n"
    "sys.meta_path.insert(0, Block())\n"
    "from core.cli import main\n"
    "sys.exit(main(sys.argv[2:]))\n")


def test_the_inference_only_install_has_all_that_predict_imports(tmp_path: Path) -> None:
    image = make_image(tmp_path / "nv.jpg", CLASS_COLOURS["nv"], size=(200, 150))
    out = subprocess.run([sys.executable, "-c", ONLY_CLASSIFY_PACKAGES,
                          str(ROOT / "requirements-classify.txt"), "predict", "--runtime",
                          "litert", "--csv", str(tmp_path / "out.csv"), str(image)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{image}: ")
    assert (tmp_path / "out.csv").read_text().splitlines()[1].startswith(f"{image},")
