"""Shared fixtures: an isolated per-user folder and small synthetic datasets."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.synthetic import make_ham

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHARED = Path(os.environ.get("SKIN_LESION_SHARED",
                             Path(__file__).resolve().parents[2] / "shared" / "datasets"))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs, caches and settings go to a temporary folder, never the user's."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("SKIN_LESION_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def train_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app trains in a child process; most GUI tests train in theirs (a TensorFlow child
    costs seconds per run). `tests/test_training_process.py` runs the child path."""
    monkeypatch.setenv("SKIN_LESION_TRAIN_IN_PROCESS", "1")


@pytest.fixture(autouse=True)
def modality_check_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Synthetic test images are not dermoscopic: the shipped modality check would refuse
    them all. Tests of the check itself use the `modality_check_on` fixture."""
    monkeypatch.setenv("SKIN_LESION_MODALITY_CHECK", "off")


@pytest.fixture()
def modality_check_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped modality check, as the app runs it."""
    monkeypatch.delenv("SKIN_LESION_MODALITY_CHECK", raising=False)


@pytest.fixture(autouse=True)
def collect_in_main_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """During Qt tests, collect garbage in the main thread only, as the app does (`gui.gui_gc`).

    Otherwise a worker thread may run the collector and destroy Qt objects from the wrong
    thread, which crashes Qt.
    """
    if "qtbot" not in request.fixturenames:
        yield
        return
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        gc.enable()


@pytest.fixture(scope="session")
def ham_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small HAM10000-layout dataset (7 classes x 6 images, 2 images per lesion)."""
    return make_ham(tmp_path_factory.mktemp("ham"))


@pytest.fixture()
def real_ham() -> Path:
    """The shared HAM10000 copy; skips when this checkout has no ../shared."""
    root = SHARED / "ham10000"
    if not (root / "HAM10000_metadata.csv").is_file():
        pytest.skip(f"real HAM10000 data not found at {root} (only CI and dev machines have it)")
    return root


@pytest.fixture(scope="session")
def tiny_model(ham_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained model file (MLP at 8 px, one epoch) shared by the GUI tests."""
    from core.training import TrainConfig, train

    config = TrainConfig(data_dir=str(ham_dir), model="mlp", image_size=8, epochs=1,
                         balance="none")
    result = train(config, out_dir=tmp_path_factory.mktemp("tiny-run") / "run")
    return result.run_dir / "model.keras"


@pytest.fixture()
def window(qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The app's main window, shown, answering Yes to its questions; its tasks stopped after
    the test (test files that need another window define their own `window`)."""
    from PySide6.QtWidgets import QMessageBox

    from gui.main_window import MainWindow

    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: QMessageBox.StandardButton.Yes)
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    yield win
    win.tasks.stop_all()
