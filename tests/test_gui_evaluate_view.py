"""The Evaluate view shows a run's or an evaluation's results as a user reads them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backend_bases import MouseButton, MouseEvent
from pytestqt.qtbot import QtBot

from core.classes import HAM10000_CLASSES
from core.metrics import compute_metrics, predictions_table
from core.subgroups import subgroup_metrics
from gui.confusion_matrix import ConfusionMatrixWidget
from gui.evaluate_view import EvaluateView
from gui.image_grid import THUMBNAIL_PX, placeholder_pixmap

CLASSES = list(HAM10000_CLASSES)
NV, MEL = CLASSES.index("nv"), CLASSES.index("mel")


@pytest.fixture(scope="module")
def run_dir(ham_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny trained run (MLP, 8 px, 1 epoch), shared by this module's tests."""
    from core.training import TrainConfig, train

    home = tmp_path_factory.mktemp("evaluate_home")
    with pytest.MonkeyPatch.context() as patch:  # caches go to the temporary home
        patch.setenv("SKIN_LESION_HOME", str(home))
        config = TrainConfig(data_dir=str(ham_dir), model="mlp", image_size=8, epochs=1,
                             balance="none")
        return train(config, out_dir=home / "run").run_dir


def fake_evaluation(ham_dir: Path) -> dict:
    """110 nv images (all predicted nv) and 10 mel (6 predicted nv, 4 mel), real paths."""
    files = sorted(str(p) for p in ham_dir.rglob("*.jpg"))
    y_true = np.array([NV] * 110 + [MEL] * 10)
    predicted = np.array([NV] * 110 + [NV] * 6 + [MEL] * 4)
    confidence = np.linspace(0.30, 0.99, len(y_true))
    proba = np.tile(((1 - confidence) / 6)[:, None], (1, len(CLASSES)))
    proba[np.arange(len(y_true)), predicted] = confidence
    ids = [f"IMG_{i:04d}" for i in range(len(y_true))]
    paths = [files[i % len(files)] for i in range(len(y_true))]
    metrics = compute_metrics(y_true, proba, CLASSES)
    metrics.update(subgroup_metrics(y_true, proba, CLASSES, ids, fake_metadata(len(y_true))))
    return {"title": "model.keras on fake", "metrics": metrics,
            "predictions": predictions_table(ids, paths, y_true, proba, CLASSES)}


def fake_metadata(n: int) -> pd.DataFrame:
    """HAM10000-like metadata cycling through each column's values (the longest site too)."""
    def cycle(values: list) -> list:
        return [values[i % len(values)] for i in range(n)]

    return pd.DataFrame({
        "sex": cycle(["male", "female"]), "age": cycle([25.0, 40.0, 55.0, 75.0, None]),
        "localization": cycle(["back", "lower extremity", "upper extremity", "face"])[:-4]
        + ["ear"] * 4, "dx_type": cycle(["histo", "follow_up", "consensus"])})


def subgroup_rows_expected(records: pd.DataFrame) -> int:
    """1 (all images) + the groups of each column, counted without `core.subgroups`."""
    def band(age: float) -> str:
        return "unknown" if age != age else "<30" if age < 30 else "30-49" if age < 50 \
            else "50-69" if age < 70 else "70+"

    return 1 + sum(records[c].nunique() for c in ("sex", "localization", "dx_type")) \
        + len({band(float(a)) for a in records["age"]})


def make_view(qtbot: QtBot) -> EvaluateView:
    view = EvaluateView()
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    return view


def cell(view: EvaluateView, row: int, col: int) -> str:
    item = view.report.item(row, col)
    assert item is not None
    return item.text()


def percentages(texts: list[str]) -> list[int]:
    return [int(re.search(r"\((\d+)%\)$", t).group(1)) for t in texts]  # type: ignore[union-attr]


def test_empty_state_says_where_results_come_from(qtbot: QtBot) -> None:
    view = make_view(qtbot)
    assert view.stack.currentWidget() is view.empty_label
    assert "Train" in view.empty_label.text() and "labelled folder" in view.empty_label.text()
    view.set_model_description("cnn-32px.keras (7 classes)")
    assert "cnn-32px.keras" in view.model_label.text()


def test_a_trained_run_shows_its_metrics_matrix_and_report(qtbot: QtBot, run_dir: Path) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    view = make_view(qtbot)
    view.show_run(run_dir)
    assert view.stack.currentIndex() == 1 and not view.error_label.isVisible()
    assert run_dir.name in view.title_label.text()
    shown = view.metrics_label.text()
    assert f"{metrics['balanced_accuracy']:.3f}" in shown
    assert f"{metrics['accuracy']:.3f}" in shown
    baseline = f"always {metrics['majority_class']}: {metrics['majority_baseline_accuracy']:.2f}"
    assert baseline in shown
    assert not view.leaky_label.isVisible()

    cm = metrics["confusion_matrix"]
    classes = metrics["classes"]
    k = len(classes)
    assert [[view.matrix.cell_text(r, c) for c in range(k)] for r in range(k)] == \
        [[str(n) for n in row] for row in cm]
    view.matrix.normalise_box.setChecked(True)
    for r in range(k):
        for c in range(k):
            expected = f"{cm[r][c] / sum(cm[r]):.2f}" if sum(cm[r]) else "–"
            assert view.matrix.cell_text(r, c) == expected
    assert [t.get_text() for t in view.matrix.ax.texts][:k] == \
        [view.matrix.cell_text(0, c) for c in range(k)]

    row, col = np.unravel_index(np.argmax(cm), (k, k))
    with qtbot.waitSignal(view.matrix.cell_clicked, timeout=2000):
        view.matrix.click_cell(int(row), int(col))
    texts = view.grid.item_texts()
    assert len(texts) == min(cm[row][col], 100) > 0
    assert all(t.startswith(f"{classes[row]} → {classes[col]} (") for t in texts)

    assert view.report.rowCount() == 7
    assert [cell(view, r, 0) for r in range(7)] == classes
    assert cell(view, classes.index("mel"), 1) == "Melanoma"
    supports = [int(cell(view, r, 7)) for r in range(7)]
    assert supports == [metrics["per_class"][c]["support"] for c in classes]
    assert len(view.roc.ax.lines) >= 2  # at least one class curve and the diagonal
    heights = [b.get_height() for b in view.misclassified.ax.patches]
    assert heights == pytest.approx([metrics["per_class"][c]["fraction_misclassified"]
                                     for c in classes])


def test_an_evaluation_fills_the_grid_capped_and_sorted(qtbot: QtBot, ham_dir: Path) -> None:
    view = make_view(qtbot)
    view.show_evaluation(fake_evaluation(ham_dir))
    assert "model.keras on fake" in view.title_label.text()
    assert "always nv: 0.92" in view.metrics_label.text()
    assert view.matrix.cell_text(MEL, NV) == "6" and view.matrix.cell_text(NV, NV) == "110"

    view.matrix.click_cell(MEL, NV)
    texts = view.grid.item_texts()
    assert len(texts) == 6 and all(t.startswith("mel → nv (") for t in texts)
    assert not view.grid.more_label.isVisible()

    view.matrix.click_cell(NV, NV)
    texts = view.grid.item_texts()
    assert len(texts) == 100
    assert view.grid.more_label.isVisible() and "10 more" in view.grid.more_label.text()
    assert "110 images" in view.grid.heading.text()
    highest = percentages(texts)
    assert highest == sorted(highest, reverse=True) and highest[0] == 93
    view.grid.sort_combo.setCurrentIndex(1)  # lowest first
    lowest = percentages(view.grid.item_texts())
    assert lowest == sorted(lowest) and lowest[0] == 30
    grey = placeholder_pixmap().toImage().pixelColor(5, 5)

    def centre_colour(row: int) -> object:
        image = view.grid.list_widget.item(row).icon().pixmap(THUMBNAIL_PX).toImage()
        return image.pixelColor(image.width() // 2, image.height() // 2)

    assert centre_colour(0) == grey  # the GUI thread only placed placeholders
    qtbot.waitUntil(lambda: all(centre_colour(r) != grey for r in range(100)), timeout=10000)


def test_a_mouse_click_on_the_matrix_selects_that_cell(qtbot: QtBot) -> None:
    widget = ConfusionMatrixWidget()
    qtbot.addWidget(widget)
    widget.resize(600, 500)
    widget.show()
    widget.set_matrix([[3, 1], [0, 0]], ["a", "b"])
    assert [widget.cell_text(0, c) for c in (0, 1)] == ["3", "1"]
    widget.normalise_box.setChecked(True)
    assert [widget.cell_text(r, c) for r in (0, 1) for c in (0, 1)] == ["0.75", "0.25", "–", "–"]
    widget.canvas.draw()
    x, y = widget.ax.transData.transform((1, 0))  # column 1 ('b' predicted), row 0 ('a' true)
    canvas = widget.canvas.mpl_canvas  # the matplotlib widget that receives the click
    event = MouseEvent("button_press_event", canvas, x, y, button=MouseButton.LEFT)
    with qtbot.waitSignal(widget.cell_clicked, timeout=2000) as blocker:
        canvas.callbacks.process("button_press_event", event)
    assert blocker.args == [0, 1] and widget.selected == (0, 1)


def test_errors_and_leaky_results_are_shown(qtbot: QtBot, ham_dir: Path,
                                            tmp_path: Path) -> None:
    view = make_view(qtbot)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    view.show_run(tmp_path / "broken")
    assert view.error_label.isVisible()
    assert "Could not open run broken" in view.error_label.text()
    assert "unfinished, nothing to resume" in view.error_label.text()
    view.show_error("no active model: choose one in the Models view first")
    assert view.error_label.text() == "no active model: choose one in the Models view first"

    result = fake_evaluation(ham_dir)
    view.show_results("study protocol", dict(result["metrics"], leaky=True), None)
    assert not view.error_label.isVisible()
    assert view.leaky_label.isVisible() and "inflated" in view.leaky_label.text()
    view.matrix.click_cell(NV, NV)
    assert view.grid.item_texts() == [] and "no per-image" in view.grid.heading.text()
    assert "ROC curves need per-image predictions" in view.roc.ax.texts[0].get_text()


def test_evaluate_button_asks_for_a_folder(qtbot: QtBot, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QFileDialog

    from gui.settings import last_folder

    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *_args: str(tmp_path)))
    view = make_view(qtbot)
    with qtbot.waitSignal(view.evaluate_folder_requested, timeout=2000) as blocker:
        view.evaluate_button.click()
    assert blocker.args == [str(tmp_path)] and last_folder("evaluate") == str(tmp_path)
    assert view.progress.isVisible()
    view.set_progress(3, 10)
    assert (view.progress.value(), view.progress.maximum()) == (3, 10)


def test_training_images_are_flagged_and_the_reliability_tab_draws(qtbot: QtBot,
                                                                    ham_dir: Path) -> None:
    view = make_view(qtbot)
    result = fake_evaluation(ham_dir)
    result["metrics"].update(seen_in_training=12, out_of_domain=3,
                             refused_by={"clinical": {"mel": 1}, "other": {},
                                         "unfamiliar": {"nv": 2}})
    view.show_evaluation(result)
    assert view.seen_label.isVisible()
    assert view.seen_label.text() == ("⚠ 12 of these images were used to train this model; "
                                      "its scores here are inflated.")
    assert ("refused (still counted): clinical photo 1 (mel 1); unfamiliar 2 (nv 2)"
            in view.metrics_label.text())
    view.tabs.setCurrentWidget(view.reliability)
    ax = view.reliability.ax
    filled = int(np.count_nonzero(np.histogram(result["predictions"]["confidence"],
                                               bins=15, range=(0, 1))[0]))
    assert len(ax.patches) == 2 * filled  # an accuracy bar and a gap bar per filled bin
    assert ax.get_title().startswith(f"ECE {result['metrics']['ece']:.3f}")
    result["metrics"]["seen_in_training"] = 0
    view.show_evaluation(result)
    assert not view.seen_label.isVisible()


def test_export_report_writes_the_chosen_file(qtbot: QtBot, run_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QFileDialog

    from core.report import export_report

    view = make_view(qtbot)
    assert not view.export_button.isEnabled()
    view.show_run(run_dir)
    assert view.export_button.isEnabled()
    target = tmp_path / "out" / "run report"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(target), "PDF report (*.pdf)"))
    with qtbot.waitSignal(view.export_report_requested) as request:
        view.export_button.click()
    source, path = request.args
    assert source == run_dir and path == str(target) + ".pdf"
    from core.report import run_report_data

    export_report(run_report_data(source), Path(path))  # what the main window's task does
    view.report_written(path)
    assert Path(path).read_bytes().startswith(b"%PDF")
    assert view.error_label.text() == f"Report saved: {path}"


def test_the_matrix_colours_follow_the_row_normalised_box(qtbot: QtBot) -> None:
    widget = ConfusionMatrixWidget()
    qtbot.addWidget(widget)
    widget.show()
    widget.set_matrix([[90, 10], [1, 1]], ["nv", "mel"])
    widget.normalise_box.setChecked(False)
    counts = np.asarray(widget.ax.images[0].get_array())
    assert counts.tolist() == [[90, 10], [1, 1]]
    assert widget.ax.images[0].get_clim() == (0.0, 90.0)
    widget.normalise_box.setChecked(True)
    fractions = np.asarray(widget.ax.images[0].get_array())
    np.testing.assert_allclose(fractions, [[0.9, 0.1], [0.5, 0.5]])
    assert widget.ax.images[0].get_clim() == (0.0, 1.0)


def test_an_evaluation_shows_the_subgroups_tab(qtbot: QtBot, tiny_model: Path,
                                               ham_dir: Path) -> None:
    from core.dataset import load_dataset
    from core.inference import evaluate_with_predictions

    metrics, table = evaluate_with_predictions(tiny_model, ham_dir)
    view = make_view(qtbot)
    view.show_evaluation({"title": "tiny on ham", "metrics": metrics, "predictions": table})
    names = [view.tabs.tabText(i) for i in range(view.tabs.count())]
    assert "Subgroups" in names
    view.tabs.setCurrentIndex(names.index("Subgroups"))
    shown = view.subgroups
    records = load_dataset(ham_dir).records
    assert shown.table.rowCount() == subgroup_rows_expected(records) == 8
    assert [shown.cell_text(r, 0) for r in range(8)] == \
        ["all", "sex", "sex", "age", "age", "age", "site", "confirmation"]
    assert shown.cell_text(0, 2) == "42" and shown.cell_text(0, 3) == "21"
    assert shown.cell_text(6, 1) == "back" and shown.cell_text(7, 1) == "histo"
    gap = metrics["largest_subgroup_gap"]
    assert (gap is None and "large enough" in shown.gap_label.text()) or \
        gap in shown.gap_label.text()


def test_undefined_subgroup_cells_say_why_in_a_tooltip(qtbot: QtBot, ham_dir: Path) -> None:
    view = make_view(qtbot)
    result = fake_evaluation(ham_dir)
    view.show_evaluation(result)
    rows = result["metrics"]["subgroups"]
    assert view.subgroups.table.rowCount() == len(rows) == \
        subgroup_rows_expected(fake_metadata(120))
    ear = next(i for i, r in enumerate(rows) if r["group"] == "ear")
    assert [view.subgroups.cell_text(ear, c) for c in (4, 5, 6)] == ["too few"] * 3
    assert view.subgroups.cell_tooltip(ear, 5) == "too few images (4; needs 10)"
    female = next(i for i, r in enumerate(rows) if r["group"] == "female")
    assert re.fullmatch(r"\d\.\d\d \[\d\.\d\d–\d\.\d\d\]",
                        view.subgroups.cell_text(female, 4))
    assert view.subgroups.cell_tooltip(female, 4) == ""
    assert result["metrics"]["largest_subgroup_gap"] in view.subgroups.gap_label.text()
    result["metrics"].pop("subgroups")
    view.show_evaluation(result)
    assert not view.subgroups.table.isVisibleTo(view.subgroups)
    assert "no subgroups" in view.subgroups.gap_label.text()
