"""Every view reads whole at the default size and at 1024x700: nothing sideways, nothing cut."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from gui.main_window import MainWindow
from tests.gui_helpers import cut_off, drop_files
from tests.synthetic import CLASS_COLOURS, make_image
from tests.test_gui_evaluate_view import fake_evaluation


@pytest.fixture()
def window(qtbot):
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    yield win
    win.tasks.stop_all()


def test_no_view_scrolls_sideways_or_cuts_a_word_at_either_size(
        qtbot, window: MainWindow, tiny_model: Path, ham_dir: Path, tmp_path: Path,
        isolated_home: Path) -> None:
    # every view with content a user has after a while: results, a run, a card
    with qtbot.waitSignal(window.models_view.active_changed, timeout=60000):
        window.models_view.activate(tiny_model)
    images = [make_image(tmp_path / f"lesion {c}.jpg", rgb) for c, rgb in CLASS_COLOURS.items()]
    window.tabs.setCurrentWidget(window.classify_view)
    drop_files(window.classify_view, images)
    qtbot.waitUntil(lambda: window.classify_view.table.rowCount() == len(images),
                    timeout=60000)
    evaluation = fake_evaluation(ham_dir)  # with the long notes line of a real evaluation
    evaluation["metrics"].update(
        ece=0.046, cohen_kappa=0.554, matthews_corrcoef=0.563, out_of_domain=8,
        refused_by={"clinical": {"bcc": 1}, "unfamiliar": {"bcc": 3, "bkl": 2, "mel": 1,
                                                          "nv": 1}})
    window.evaluate_view.show_evaluation(evaluation)
    from core.paths import runs_dir

    shutil.copytree(tiny_model.parent, runs_dir() / "tiny-run")
    window.train_view.runs.refresh()
    window.models_view.refresh()
    seen = {}
    for size in ((1280, 860), (1024, 700)):
        window.resize(*size)
        for index in range(window.tabs.count()):
            window.tabs.setCurrentIndex(index)
            for _ in range(3):
                QApplication.processEvents()
            fits = [] if window.width() <= size[0] and window.height() <= size[1] else [
                f"the window cannot shrink below {window.width()}x{window.height()}"]
            seen[f"{window.tabs.tabText(index)} at {size[0]}x{size[1]}"] = fits + cut_off(window)
            if window.tabs.currentWidget() is window.evaluate_view:  # its widest table too
                inner = window.evaluate_view.tabs
                inner.setCurrentWidget(window.evaluate_view.subgroups)
                for _ in range(3):
                    QApplication.processEvents()
                seen[f"Evaluate ▸ Subgroups at {size[0]}x{size[1]}"] = cut_off(window)
                inner.setCurrentIndex(0)
    assert {where: found for where, found in seen.items() if found} == {}


def test_a_nevus_answer_says_it_does_not_rule_out_melanoma(qtbot, tmp_path: Path) -> None:
    from core.classes import HAM10000_CLASSES, full_name
    from core.inference import Prediction
    from gui.classify_view import ClassifyView

    view = ClassifyView()
    qtbot.addWidget(view)
    view.show()
    answers = []
    for label in ("nv", "mel"):
        image = make_image(tmp_path / f"{label}.jpg", CLASS_COLOURS[label])
        proba = {c: 0.9 if c == label else 0.1 / 6 for c in HAM10000_CLASSES}
        answers.append(Prediction(str(image), label, full_name(label), 0.9, proba,
                                  in_domain=True))
    view.show_predictions(answers)
    seen = {}
    for row, answer in enumerate(answers):
        view.table.selectRow(row)
        seen[answer.label] = view.nevus_note.isVisible() and view.nevus_note.text()
    assert seen["mel"] is False
    assert "does not rule out melanoma" in str(seen["nv"])
