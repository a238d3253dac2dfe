"""`pip install .` gives an app: the wheel holds the bundled model, its commands run anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.synthetic import CLASS_COLOURS, make_image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # the installed dependencies are reused: no build isolation, no dependencies fetched
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                    "--no-build-isolation", "--quiet", "-w", str(out)],
                   check=True, capture_output=True, text=True, timeout=600)
    [built] = out.glob("skin_lesion_classifier-*.whl")
    return built


def test_the_wheel_holds_the_bundled_model_icons_and_both_commands(wheel: Path) -> None:
    from core import __version__

    assert wheel.name.startswith(f"skin_lesion_classifier-{__version__}-")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        model = archive.getinfo("resources/models/default.keras")
        entry_points = next(archive.read(n).decode() for n in names
                            if n.endswith("entry_points.txt"))
    assert model.file_size == (ROOT / "resources" / "models" / "default.keras").stat().st_size
    assert {"resources/icons/app.png", "resources/skin-lesion-classifier.desktop",
            "core/cli.py", "gui/app.py", "resources/models/default.tflite",
            "resources/models/default.tflite.json",  # the twin answers without TF
            "resources/models/default.similar.npz"} <= names  # the similar cases' index
    assert "[console_scripts]\nskin-lesion = core.cli:main" in entry_points
    assert "[gui_scripts]\nskin-lesion-app = gui.app:run_app" in entry_points


def test_the_installed_command_predicts_from_another_folder(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile",
                    "--quiet", "--target", str(target), str(wheel)], check=True,
                   capture_output=True, text=True, timeout=600)
    elsewhere = tmp_path / "elsewhere"
    image = make_image(elsewhere / "lesion.jpg", CLASS_COLOURS["mel"], size=(200, 150))
    env = {**os.environ, "PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "3"}
    where = subprocess.run([sys.executable, "-c", "import core.paths as p; "
                            "print(p.BUNDLED_MODEL)"], cwd=elsewhere, env=env,
                           capture_output=True, text=True, timeout=120)
    assert where.stdout.strip() == str(target / "resources" / "models" / "default.keras")
    done = subprocess.run([str(target / "bin" / "skin-lesion"), "predict", "--json",
                           str(image)], cwd=elsewhere, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "answered by LiteRT" in done.stderr  # the installed twin is current
    [row] = json.loads(done.stdout)
    assert row["path"] == str(image) and len(row["probabilities"]) == 7
    assert isinstance(row["in_domain"], bool)  # the installed model carries its gate
