"""The Evaluate view: a run's or an evaluation's metrics, confusion matrix, report and ROC."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.classes import full_name
from core.errors import SkinLesionError
from core.refusal import refused_summary as refusal_summary
from core.report import ReportData
from core.runs import read_run
from gui.about import DISCLAIMER
from gui.confusion_matrix import ConfusionMatrixWidget, PlotPanel
from gui.image_grid import ImageGrid
from gui.save_names import REPORT_FILTERS, with_filter_suffix
from gui.settings import last_folder, remember_folder
from gui.subgroup_table import SubgroupTable
from gui.theme import themed
from gui.widgets import WARNING_STYLE, message_label, with_empty_state

if TYPE_CHECKING:
    import pandas as pd

EMPTY_TEXT = (
    "<h2>Nothing to show yet</h2>"
    "<p>Open a run from the <b>Train</b> tab's run list, or evaluate the active model on a "
    "labelled folder with the button above (HAM10000 layout, ISIC 2018 ground truth, the ISIC "
    "2019 or 2020 training set, or one sub-folder of images per class).</p>"
)
REPORT_COLUMNS = ("Class", "Full name", "Precision", "Recall", "Specificity", "F1", "AUC",
                  "Support")


def fmt(value: Any, digits: int = 3) -> str:
    """A score with `digits` decimals, or '—' when it is undefined (None)."""
    return "—" if value is None else f"{float(value):.{digits}f}"


def metrics_html(metrics: dict[str, Any]) -> str:
    """The headline scores with the majority-class baseline beside them, as rich text."""
    balanced = fmt(metrics.get("balanced_accuracy"))
    ci = metrics.get("balanced_accuracy_ci95")
    if ci:
        unit = f", by {metrics['ci_unit']}" if metrics.get("ci_unit") else ""
        balanced += (f" <span style='font-size: 10pt'>(95% CI {ci[0]:.3f}–{ci[1]:.3f}{unit})"
                     "</span>")
    cells = [("Balanced accuracy (ISIC 2018)", balanced),
             ("Accuracy", fmt(metrics.get("accuracy"))),
             ("Macro AUC", fmt(metrics.get("macro_auc"))),
             ("Melanoma recall", fmt(metrics.get("melanoma_recall"))),
             ("Baseline", f"always {metrics.get('majority_class', '?')}: "
                          f"{fmt(metrics.get('majority_baseline_accuracy'), 2)}")]
    head = "".join(f"<th style='padding: 0 14px 0 0'>{name}</th>" for name, _ in cells)
    body = "".join(f"<td style='padding: 0 14px 0 0; font-size: 15pt'>{value}</td>"
                   for _, value in cells)
    notes = [f"{metrics.get('n_images', '?')} images"]
    if metrics.get("evaluated_on"):
        notes.append(f"evaluated on the {metrics['evaluated_on']} part")
    if metrics.get("best_epoch"):
        notes.append(f"best epoch {metrics['best_epoch']} of {metrics.get('epochs_completed')}")
    if metrics.get("stopped"):
        notes.append("training was stopped early")
    if metrics.get("tta"):
        notes.append("with flip test-time augmentation")
    if metrics.get("ece") is not None:
        notes.append(f"calibration error (ECE) {fmt(metrics['ece'])}")
    if metrics.get("out_of_domain") is not None:
        notes.append(refusal_summary(metrics))
    if metrics.get("cohen_kappa") is not None:
        notes.append(f"Cohen's kappa {fmt(metrics['cohen_kappa'])}")
    if metrics.get("matthews_corrcoef") is not None:
        notes.append(f"MCC {fmt(metrics['matthews_corrcoef'])}")
    return (f"<table><tr>{head}</tr><tr>{body}</tr></table>"
            f"<p style='color: #555'>{' · '.join(notes)}</p>")


def seen_text(metrics: dict[str, Any]) -> str:
    """The warning for an evaluation on images the model was trained on ('' when none)."""
    seen = metrics.get("seen_in_training")
    if not seen:
        return ""
    return (f"⚠ {seen} of these images were used to train this model; its scores here are "
            "inflated.")


def leaky_text() -> str:
    """The warning shown for results of the study's seed-leaky protocol."""
    from core.splits import LEAKY_WARNING

    return (f"⚠ Inflated scores. {LEAKY_WARNING[0].upper()}{LEAKY_WARNING[1:]}. "
            "Compare models only on the lesion split.")


def _item(text: str, numeric: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    if numeric:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


class EvaluateView(QWidget):
    """Shows one result: headline metrics, confusion matrix with images, report, ROC curves."""

    evaluate_folder_requested = Signal(str)
    export_report_requested = Signal(object, str)  # ReportData or a run folder, target file

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.metrics: dict[str, Any] = {}
        self.predictions: pd.DataFrame | None = None
        self.report_data: ReportData | Path | None = None

        self.evaluate_button = QPushButton("Evaluate active model on a labelled folder…")
        self.evaluate_button.clicked.connect(self.choose_folder)
        self.model_label = QLabel("(no active model yet)")
        self.model_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.error_label = message_label()

        self.export_button = QPushButton("Export report…")
        self.export_button.setToolTip("Save these results as one HTML file (images inline) "
                                      "or as a PDF")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.choose_report_file)
        top = QHBoxLayout()
        top.addWidget(self.evaluate_button)
        top.addWidget(self.model_label, 1)
        top.addWidget(self.progress)
        top.addWidget(self.export_button)
        self.stack = with_empty_state(EMPTY_TEXT, self._build_content())
        self.empty_label = cast(QLabel, self.stack.widget(0))
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.error_label)
        layout.addWidget(self.stack, 1)

    def _build_content(self) -> QWidget:
        self.title_label = QLabel()
        self.title_label.setWordWrap(True)
        self.metrics_label = QLabel()
        self.metrics_label.setTextFormat(Qt.TextFormat.RichText)
        self.metrics_label.setWordWrap(True)  # the notes line grows with the refusals
        self.leaky_label = QLabel()
        self.leaky_label.setWordWrap(True)
        self.leaky_label.setStyleSheet(WARNING_STYLE)
        self.leaky_label.setVisible(False)
        self.seen_label = QLabel()
        self.seen_label.setWordWrap(True)
        self.seen_label.setStyleSheet(WARNING_STYLE)
        self.seen_label.setVisible(False)

        self.matrix = ConfusionMatrixWidget()
        self.matrix.cell_clicked.connect(self.show_cell)
        self.grid = ImageGrid()
        matrix_split = QSplitter(Qt.Orientation.Horizontal)
        matrix_split.addWidget(self.matrix)
        matrix_split.addWidget(self.grid)
        matrix_split.setSizes([600, 600])

        self.report = QTableWidget(0, len(REPORT_COLUMNS))
        self.report.setHorizontalHeaderLabels(list(REPORT_COLUMNS))
        self.report.verticalHeader().setVisible(False)
        header = self.report.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.misclassified = PlotPanel("Fraction misclassified per true class",
                                       "misclassified_per_class.png", width=6, height=3)
        report_split = QSplitter(Qt.Orientation.Vertical)
        report_split.addWidget(self.report)
        report_split.addWidget(self.misclassified)
        report_split.setSizes([300, 300])

        self.roc = PlotPanel("ROC curves (one class vs. the rest)", "roc_curves.png",
                             width=6, height=4.5)
        self.tabs = QTabWidget()
        self.tabs.addTab(matrix_split, "Confusion matrix")
        self.tabs.addTab(report_split, "Per-class report")
        self.tabs.addTab(self.roc, "ROC curves")
        self.reliability = PlotPanel("Reliability diagram (is a 90% answer right 90% of the "
                                     "time?)", "reliability_diagram.png", width=6, height=4.5)
        self.tabs.addTab(self.reliability, "Reliability")
        self.subgroups = SubgroupTable()
        self.tabs.addTab(self.subgroups, "Subgroups")

        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title_label)
        layout.addWidget(self.metrics_label)
        layout.addWidget(self.leaky_label)
        layout.addWidget(self.seen_label)
        layout.addWidget(self.tabs, 1)
        disclaimer = QLabel(f"⚕ {DISCLAIMER}")
        disclaimer.setStyleSheet("color: #444; background: #fff4d6; padding: 4px;")
        layout.addWidget(disclaimer)
        return content

    # ----- requests ------------------------------------------------------------------------
    @Slot()
    def choose_folder(self) -> None:
        """Ask for a labelled folder and request an evaluation of the active model on it."""
        folder = QFileDialog.getExistingDirectory(self, "Evaluate on a labelled folder",
                                                  last_folder("evaluate"))
        if not folder:
            return
        remember_folder("evaluate", folder)
        self.error_label.setVisible(False)
        self.progress.setRange(0, 0)
        self.progress.setFormat("Evaluating…")
        self.progress.setVisible(True)
        self.evaluate_folder_requested.emit(folder)

    def set_model_description(self, text: str) -> None:
        """Say which model an evaluation would use."""
        # the button's model, not necessarily the one whose results are shown below
        self.model_label.setText(f"(with the active model: {text})" if text
                                 else "(no active model yet)")

    # ----- results -------------------------------------------------------------------------
    def show_run(self, run_dir: Path) -> None:
        """Show the metrics and test predictions a training run saved."""
        try:
            run = read_run(Path(run_dir))
        except (SkinLesionError, OSError, ValueError, KeyError) as exc:
            self.show_error(f"Could not open run {Path(run_dir).name}: {exc}")
            return
        config = run.config
        title = (f"Run {run.summary.name}: {config.get('model', '?')} on "
                 f"{Path(str(config.get('data_dir', '?'))).name}, split {config.get('split', '?')}"
                 f", {config.get('image_size') or 'default'} px")
        self.show_results(title, run.metrics, run.predictions)
        self.report_data = run.summary.path  # the worker reads it when a report is asked for
        self.export_button.setEnabled(True)

    @Slot(object)
    def show_evaluation(self, result: dict) -> None:
        """Show the outcome of an evaluation task: {'title', 'metrics', 'predictions'}."""
        metrics = result["metrics"]
        self.show_results(str(result["title"]), metrics, result.get("predictions"))
        config = {"model": metrics.get("model"), "data": metrics.get("data"),
                  "layout": metrics.get("layout"), "tta": metrics.get("tta")}
        self.report_data = ReportData(f"Evaluation: {result['title']}", metrics, config,
                                      None, result.get("predictions"),
                                      str(result.get("card", "")))
        self.export_button.setEnabled(True)

    def show_results(self, title: str, metrics: dict, predictions: pd.DataFrame | None) -> None:
        """Fill every part of the view from a metrics dict and (optionally) predictions."""
        self.metrics, self.predictions = metrics, predictions
        self.progress.setVisible(False)
        self.error_label.setVisible(False)
        self.title_label.setText(f"<h3>{title}</h3>")
        self.metrics_label.setText(themed(metrics_html(metrics)))
        leaky = bool(metrics.get("leaky"))
        self.leaky_label.setText(leaky_text() if leaky else "")
        self.leaky_label.setVisible(leaky)
        self.seen_label.setText(seen_text(metrics))
        self.seen_label.setVisible(bool(seen_text(metrics)))
        classes = list(metrics.get("classes", []))
        self.matrix.set_matrix(metrics.get("confusion_matrix", []), classes)
        if predictions is None:
            self.grid.show_message("These results have no per-image predictions to show.")
        else:
            self.grid.show_message("Click a cell of the confusion matrix to see its images.")
        self._fill_report(metrics)
        self.subgroups.set_metrics(metrics)
        self._plot_misclassified(metrics)
        self._plot_roc(classes, predictions)
        self.stack.setCurrentIndex(1)

    @Slot()
    def choose_report_file(self) -> None:
        """Ask where to save the report and request it (HTML, or PDF by the suffix)."""
        if self.report_data is None:
            return
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export report", str(Path(last_folder("report")) / "report.html"),
            REPORT_FILTERS)
        if not path:
            return
        path = with_filter_suffix(path, chosen, REPORT_FILTERS)  # a name without a suffix
        remember_folder("report", str(Path(path).parent))
        self.progress.setRange(0, 0)
        self.progress.setFormat("Writing the report…")
        self.progress.setVisible(True)
        self.export_report_requested.emit(self.report_data, path)

    @Slot(object)
    def report_written(self, path: object) -> None:
        """Say where the report went."""
        self.progress.setVisible(False)
        self.error_label.setText(f"Report saved: {path}")
        self.error_label.setVisible(True)

    @Slot(int, int)
    def show_cell(self, row: int, col: int) -> None:
        """Show the images whose true class is `row` and predicted class `col`."""
        classes = list(self.metrics.get("classes", []))
        if self.predictions is None or not classes:
            self.grid.show_message("These results have no per-image predictions to show.")
            return
        true, predicted = classes[row], classes[col]
        table = self.predictions
        rows = table[(table["true"] == true) & (table["predicted"] == predicted)]
        self.grid.show_images(rows, f"true {true}, predicted {predicted}")

    @Slot(int, int)
    def set_progress(self, done: int, total: int) -> None:
        """Show an evaluation's progress."""
        self.progress.setVisible(True)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat("Evaluating: %v / %m images")

    @Slot(str)
    def show_error(self, message: str) -> None:
        """Show `message` inline, above the results (which stay as they were)."""
        self.progress.setVisible(False)
        self.error_label.setText(message)
        self.error_label.setVisible(True)

    # ----- tables and plots ----------------------------------------------------------------
    def _fill_report(self, metrics: dict[str, Any]) -> None:
        per_class: dict[str, dict[str, Any]] = metrics.get("per_class", {})
        self.report.setRowCount(len(per_class))
        for r, (code, scores) in enumerate(per_class.items()):
            values = [fmt(scores.get(key)) for key in
                      ("precision", "recall", "specificity", "f1", "auc")]
            self.report.setItem(r, 0, _item(code))
            self.report.setItem(r, 1, _item(full_name(code)))
            for c, value in enumerate(values, start=2):
                self.report.setItem(r, c, _item(value, numeric=True))
            self.report.setItem(r, 7, _item(str(scores.get("support", "")), numeric=True))

    def _plot_misclassified(self, metrics: dict[str, Any]) -> None:
        per_class: dict[str, dict[str, Any]] = metrics.get("per_class", {})
        if not per_class:
            self.misclassified.message("No per-class scores")
            return
        ax = self.misclassified.ax
        ax.clear()
        ax.set_axis_on()
        codes = list(per_class)
        fractions = [float(per_class[c].get("fraction_misclassified", 0.0)) for c in codes]
        bars = ax.bar(codes, fractions, color="#c0504d")
        ax.bar_label(bars, labels=[f"n={per_class[c].get('support', 0)}" for c in codes],
                     fontsize=8)
        ax.set_ylim(0, 1.1)
        ax.set_ylabel("fraction misclassified")
        ax.set_xlabel("true class")
        self.misclassified.canvas.draw_idle()

    def _plot_roc(self, classes: list[str], predictions: pd.DataFrame | None) -> None:
        if predictions is None or predictions.empty:
            self.roc.message("ROC curves need per-image predictions, which these results lack")
            self.reliability.message("A reliability diagram needs per-image predictions")
            return
        from core.metrics import roc_curves, table_arrays

        try:
            y_true, proba = table_arrays(predictions, classes)
        except (KeyError, ValueError) as exc:
            self.roc.message(f"The predictions table cannot be read: {exc}")
            self.reliability.message(f"The predictions table cannot be read: {exc}")
            return
        curves = roc_curves(y_true, proba, classes)
        if not curves:
            self.roc.message("No class has both positive and negative examples")
        else:
            from core.plots import draw_roc

            draw_roc(self.roc.ax, curves, self.metrics.get("per_class", {}))
            self.roc.canvas.draw_idle()
        self._plot_reliability(y_true, proba)

    def _plot_reliability(self, y_true: Any, proba: Any) -> None:
        from core.calibration import reliability
        from core.plots import draw_reliability

        draw_reliability(self.reliability.ax, reliability(y_true, proba))
        self.reliability.canvas.draw_idle()
