"""The Classify view: drop images (or a folder), see the class, probabilities and a table."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core import refusal
from core.classes import short_name
from core.dataset import IMAGE_SUFFIXES
from core.inference import Prediction, expand_paths, predictions_csv
from core.paths import write_text_atomic
from gui.about import DISCLAIMER
from gui.image_panel import ImagePanel
from gui.plot_canvas import PlotCanvas
from gui.settings import last_folder, remember_folder
from gui.similar_cases import SimilarCasesPanel
from gui.widgets import message_label

CHUNK = 64
NO_GATE_TEXT = ("This model has no familiarity gate (an older model file): images that are "
                "not dermoscopic are still refused, but a dermoscopic image unlike its "
                "training images gets a diagnosis.")


def check_text(p: Prediction) -> str:
    """The table's check cell: 'passed', or the refusal with its score; '—' without checks."""
    if p.in_domain is None:
        return "—"
    if p.refusal == refusal.UNFAMILIAR:
        return f"{refusal.SHORT[p.refusal]} ({p.domain_score:.2f})"
    if p.refusal:
        return refusal.SHORT[p.refusal]
    return "passed"


def refusal_detail(p: Prediction) -> str:
    """The headline for a refused image, with the score that decided it."""
    if p.refusal == refusal.UNFAMILIAR:
        return f"Not classified: unfamiliar to this model (score {p.domain_score:.2f} > 1.00)"
    return (f"Not classified: {refusal.SHORT[p.refusal]} "
            f"(P(dermoscopic) {p.modality_score:.2f})")


NEVUS_NOTE = ("A nevus (nv) answer does not rule out melanoma: the model calls some "
              "melanomas nv (the model card counts them). Have a changing or worrying lesion "
              "checked by a doctor.")


class ClassifyView(QWidget):
    """Drop one or many images anywhere on this view to classify them."""

    classify_requested = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.predictions: list[Prediction] = []
        self.model_label = QLabel("Model: none loaded yet")
        open_button = QPushButton("Open images…")
        open_button.clicked.connect(self.choose_files)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self.export_csv)
        self.export_button.setEnabled(False)
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 1.0)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.setValue(0.5)
        self.threshold_spin.setPrefix("Low-confidence below ")
        self.threshold_spin.valueChanged.connect(self._show_selected)
        self.tta_check = QCheckBox("Average over flips (TTA)")
        self.tta_check.setToolTip("Test-time augmentation: classify the image and its three "
                                  "flips and average the probabilities (4x slower)")
        top = QHBoxLayout()
        top.addWidget(self.model_label, 1)
        top.addWidget(self.tta_check)
        top.addWidget(self.threshold_spin)
        top.addWidget(open_button)
        top.addWidget(self.export_button)

        self.hint = QLabel("Drop dermoscopic images or a folder here, or use File ▸ Open Image.")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setStyleSheet("border: 2px dashed #999; border-radius: 8px; padding: 18px;"
                                "color: #555; font-size: 14px;")
        self.error_label = message_label()
        self.progress = QProgressBar()
        self.progress.hide()

        self.image_panel = ImagePanel()
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.result_label.setStyleSheet("font-size: 18px; font-weight: bold;")
        self.low_confidence = QLabel("")
        self.low_confidence.setWordWrap(True)
        self.low_confidence.setStyleSheet("color: #a15c00; font-weight: bold;")
        self.low_confidence.hide()
        self.refusal = QLabel("")
        self.refusal.setWordWrap(True)
        self.refusal.setStyleSheet("color: #8a1c1c; background: #fde8e8; padding: 8px; "
                                   "font-weight: bold;")
        self.refusal.hide()
        self.show_anyway = QPushButton("Show the probabilities anyway")
        self.show_anyway.setCheckable(True)
        self.show_anyway.setToolTip("The model still computes them, but they mean little for "
                                    "an image unlike anything it was trained on")
        self.show_anyway.toggled.connect(self._show_selected)
        self.show_anyway.hide()
        self.nevus_note = QLabel(NEVUS_NOTE)
        self.nevus_note.setWordWrap(True)
        self.nevus_note.setStyleSheet("color: #a15c00;")
        self.nevus_note.hide()
        self.no_gate = QLabel(NO_GATE_TEXT)
        self.no_gate.setWordWrap(True)
        self.no_gate.setStyleSheet("color: #a15c00;")
        self.no_gate.hide()
        self.disclaimer = QLabel(f"⚕ {DISCLAIMER}")
        self.disclaimer.setWordWrap(True)
        self.disclaimer.setStyleSheet("color: #444; background: #fff4d6; padding: 6px;")
        self.chart = PlotCanvas(self, width=5, height=3)
        self.chart.when_created(self._empty_chart)

        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["File", "Prediction", "Confidence", "Checks",
                                              "Note"])
        header = self.table.horizontalHeaderItem(3)
        if header is not None:
            header.setToolTip("Is it a dermoscopic image (the modality check), and is it like "
                              "this model's training images (its familiarity gate)?")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._show_selected)

        detail = QVBoxLayout()
        detail.addWidget(self.result_label)
        detail.addWidget(self.refusal)
        detail.addWidget(self.show_anyway)
        detail.addWidget(self.low_confidence)
        detail.addWidget(self.nevus_note)
        detail.addWidget(self.no_gate)
        detail.addWidget(self.chart, 1)
        detail.addWidget(self.disclaimer)
        detail_widget = QWidget()
        detail_widget.setLayout(detail)
        upper = QSplitter()
        upper.addWidget(self.image_panel)
        upper.addWidget(detail_widget)
        upper.setSizes([380, 620])
        self.similar = SimilarCasesPanel()  # under the result: the nearest training images
        result_part = QWidget()
        result_layout = QVBoxLayout(result_part)
        result_layout.setContentsMargins(0, 0, 0, 0)
        result_layout.addWidget(upper, 1)
        result_layout.addWidget(self.similar)
        lower = QSplitter(Qt.Orientation.Vertical)
        lower.addWidget(result_part)
        lower.addWidget(self.table)
        lower.setSizes([520, 220])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.hint)
        layout.addWidget(self.error_label)
        layout.addWidget(self.progress)
        layout.addWidget(lower, 1)

    # ----- input ----------------------------------------------------------------------------
    def choose_files(self) -> None:
        """Ask for image files and classify them."""
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open images", last_folder("images"),
            "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;All files (*)")
        if files:
            remember_folder("images", str(Path(files[0]).parent))
            self.request(files)

    def request(self, paths: list[str]) -> None:
        """Expand folders and ask for classification of the files."""
        files = expand_paths(paths)
        if not files:
            self.show_error("No image files found in what was dropped.")
            return
        self.classify_requested.emit(files)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.request(paths)

    # ----- output ---------------------------------------------------------------------------
    def set_recipe_tta(self, always: bool) -> None:
        """Show whether the active model's recipe always averages over flips."""
        self.tta_check.setChecked(always)
        self.tta_check.setEnabled(not always)
        # greyed out, it says why without a hover
        self.tta_check.setText("Flips averaged (model's recipe)" if always
                               else "Average over flips (TTA)")
        self.tta_check.setToolTip(
            "This model's recipe always averages over the image and its three flips"
            if always else "Test-time augmentation: classify the image and its three flips "
            "and average the probabilities (4x slower)")

    def set_model_description(self, text: str) -> None:
        """Say which model classifies."""
        self.model_label.setText(f"Model: {text}")

    def show_busy(self, count: int) -> None:
        """Show that `count` images are being classified."""
        self.error_label.hide()
        self.progress.setRange(0, count)
        self.progress.setValue(0)
        self.progress.setVisible(count > 1)

    @Slot(int, int)
    def set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    @Slot(str)
    def show_error(self, message: str) -> None:
        """Show a message inline; earlier results stay as they were."""
        self.progress.hide()
        self.error_label.setText(message)
        self.error_label.show()

    @Slot(object)
    def show_predictions(self, predictions: list[Prediction]) -> None:
        """Show results; files that could not be read are reported inline."""
        self.progress.hide()
        failed = [p for p in predictions if p.error]
        if len(failed) == len(predictions):
            self.show_error("\n".join(f"Could not classify {p.error}" for p in failed))
            return
        self.error_label.setVisible(bool(failed))
        self.error_label.setText(f"{len(failed)} file(s) could not be read: "
                                 + "; ".join(p.error for p in failed[:3]))
        self.hint.hide()
        self.predictions = predictions
        self.similar.reset()
        self.table.setRowCount(len(predictions))
        self.no_gate.setVisible(any(not p.error and p.domain_score is None
                                    for p in predictions))
        for row, p in enumerate(predictions):
            refused = p.in_domain is False
            label = "not classified" if refused else p.label and f"{p.label} — {p.full_name}"
            cells = (Path(p.path).name, label,
                     "" if p.error or refused else f"{p.confidence:.1%}",
                     "" if p.error else check_text(p), p.error)
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.table.setVisible(len(predictions) > 1)
        self.export_button.setEnabled(True)
        first = next(i for i, p in enumerate(predictions) if not p.error)
        self.table.selectRow(first)
        self._show(predictions[first])

    def _show_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows and rows[0].row() < len(self.predictions):
            self._show(self.predictions[rows[0].row()])

    def _show(self, p: Prediction) -> None:
        if p.error or p.probabilities is None:
            self.result_label.setText(f"{Path(p.path).name}: {p.error}")
            self.similar.hide_panel()
            return
        self.image_panel.show_file(p.path)
        refused = p.in_domain is False
        self.refusal.setVisible(refused)
        self.show_anyway.setVisible(refused)
        if refused:
            self.similar.hide_panel()
            self.refusal.setText(refusal.TEXT[p.refusal])
            self.result_label.setText(refusal_detail(p))
            self.low_confidence.hide()
            self.nevus_note.hide()
            self._plot(p, greyed=True, visible=self.show_anyway.isChecked())
            return
        self.result_label.setText(f"{p.full_name} ({p.label}) — {p.confidence:.1%}")
        low = p.confidence < self.threshold_spin.value()
        self.low_confidence.setText(
            f"Low confidence: the top probability is below {self.threshold_spin.value():.0%}. "
            "The model is unsure; do not rely on this result." if low else "")
        self.low_confidence.setVisible(low)
        self.nevus_note.setVisible(p.label == "nv")  # the answer users see most
        self._plot(p)
        self.similar.request(p.path)

    def _empty_chart(self) -> None:
        ax = self.chart.axes[0]
        ax.set_axis_off()
        ax.text(0.5, 0.5, "The class probabilities appear here\nwhen you drop an image",
                transform=ax.transAxes, ha="center", va="center", color="0.45")

    def _plot(self, p: Prediction, greyed: bool = False, visible: bool = True) -> None:
        """Draw the probability bars (grey for a refused image), or nothing."""
        ax = self.chart.axes[0]
        ax.clear()
        if not visible or p.probabilities is None:
            ax.set_axis_off()
            self.chart.draw_idle()
            return
        ax.set_axis_on()
        names = list(p.probabilities)
        values = [p.probabilities[n] for n in names]
        colours = ["#b0b0b0" if greyed else "#c62828" if n == p.label else "#6d8fb3"
                   for n in names]
        # short names: the full ones squeezed the bars to a quarter of the width
        ax.barh([f"{n} — {short_name(n)}" for n in names], values, color=colours)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("probability")
        for y, v in enumerate(values):
            ax.text(min(v + 0.01, 0.9), y, f"{v:.1%}", va="center", fontsize=8)
        self.chart.draw_idle()

    def bar_count(self) -> int:
        """Number of probability bars drawn (one per class)."""
        return len(self.chart.axes[0].patches)

    def export_csv(self) -> None:
        """Save the results table as CSV (written atomically)."""
        path, _ = QFileDialog.getSaveFileName(self, "Export results", "predictions.csv",
                                              "CSV (*.csv)")
        if path:
            try:
                write_text_atomic(Path(path), predictions_csv(self.predictions))
            except OSError as exc:
                QMessageBox.warning(self, "Could not export", str(exc))
