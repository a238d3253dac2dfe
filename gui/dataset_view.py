"""The Dataset view: open a dataset folder and see its classes, metadata, samples, problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
from PySide6.QtCore import QMimeData, Qt, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.classes import full_name
from gui.confusion_matrix import PlotPanel
from gui.dataset_health import DatasetHealth
from gui.image_grid import array_to_pixmap
from gui.settings import last_folder, remember_folder
from gui.task_functions import DatasetOverview
from gui.theme import themed
from gui.widgets import message_label, with_empty_state

SAMPLES_PER_CLASS = 6
SAMPLE_PX = 96
CHECK_PX = 32  # every image is decoded once at this size so unreadable ones are found
TOP_LOCATIONS = 12
EMPTY_TEXT = (
    "<h2>No dataset open</h2>"
    "<p>Click <b>Open dataset folder…</b> or drop a folder here.</p>"
    "<p>Understood layouts: the HAM10000 download from Kaggle or the ISIC archive "
    "(HAM10000_metadata.csv and the image folders), one sub-folder of images per class, "
    "the ISIC 2018 Task 3 images with their ground-truth CSV, or the ISIC 2019 or ISIC 2020 "
    "training set (ground-truth and metadata CSVs, or train.csv, with the images).</p>"
)


def dropped_folder(mime: QMimeData) -> str | None:
    """The local folder a drag carries, if it carries exactly one; else None."""
    urls = mime.urls() if mime.hasUrls() else []
    if len(urls) != 1 or not urls[0].isLocalFile():
        return None
    path = urls[0].toLocalFile()
    return path if Path(path).is_dir() else None


def problem_line(problem: dict[str, str]) -> str:
    """One problem as 'kind: item (detail)'."""
    detail = problem.get("detail", "")
    return f"{problem['kind']}: {problem['item']}" + (f" ({detail})" if detail else "")


class DatasetView(QWidget):
    """Open a dataset folder (button or drop) and show what it holds."""

    open_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.overview: DatasetOverview | None = None
        self.sample_labels: dict[str, list[QLabel]] = {}

        self.open_button = QPushButton("Open dataset folder…")
        self.open_button.clicked.connect(self.choose_folder)
        self.header = QLabel()
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.error_label = message_label()
        self.health = DatasetHealth()
        self.health.show_requested.connect(lambda: self.tabs.setCurrentWidget(self.health))
        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.header, 1)
        top.addWidget(self.progress)

        self.stack = with_empty_state(EMPTY_TEXT, self._build_content())
        self.empty_label = cast(QLabel, self.stack.widget(0))
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.error_label)
        layout.addWidget(self.health.line)
        layout.addWidget(self.stack, 1)

    def _build_content(self) -> QWidget:
        self.class_chart = PlotPanel("Images and lesions per class", "classes.png", width=8)
        self.dx_type_chart = PlotPanel("How the diagnosis was confirmed (dx_type)",
                                       "dx_type.png")
        self.location_chart = PlotPanel(f"Localization (top {TOP_LOCATIONS})",
                                        "localization.png")
        self.age_chart = PlotPanel("Age by decade", "age.png")
        self.sex_chart = PlotPanel("Sex", "sex.png")
        metadata = QWidget()
        grid = QGridLayout(metadata)
        grid.setContentsMargins(0, 0, 0, 0)
        for i, panel in enumerate((self.dx_type_chart, self.location_chart, self.age_chart,
                                   self.sex_chart)):
            grid.addWidget(panel, i // 2, i % 2)

        self.samples_body = QWidget()
        self.samples_layout = QGridLayout(self.samples_body)
        self.samples_layout.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.samples_scroll = QScrollArea()
        self.samples_scroll.setWidgetResizable(True)
        self.samples_scroll.setWidget(self.samples_body)

        self.problems_heading = QLabel()
        self.problems_list = QListWidget()
        problems = QWidget()
        problems_layout = QVBoxLayout(problems)
        problems_layout.addWidget(self.problems_heading)
        problems_layout.addWidget(self.problems_list, 1)

        self.tabs = QTabWidget()
        self.tabs.addTab(self.class_chart, "Classes")
        self.tabs.addTab(metadata, "Metadata")
        self.tabs.addTab(self.samples_scroll, "Samples")
        self.tabs.addTab(problems, "Problems")
        self.tabs.addTab(self.health, "Not dermoscopic")
        self.health.title_changed.connect(
            lambda title: self.tabs.setTabText(self.tabs.indexOf(self.health), title))
        return self.tabs

    # ----- opening ------------------------------------------------------------------------
    @Slot()
    def choose_folder(self) -> None:
        """Ask for a dataset folder and request that it be opened."""
        folder = QFileDialog.getExistingDirectory(self, "Open dataset folder",
                                                  last_folder("dataset"))
        if folder:
            remember_folder("dataset", folder)
            self.open_requested.emit(folder)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Accept a drag that carries exactly one local folder."""
        if dropped_folder(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """Open the dropped folder."""
        folder = dropped_folder(event.mimeData())
        if folder is not None:
            event.acceptProposedAction()
            remember_folder("dataset", folder)
            self.open_requested.emit(folder)

    def show_loading(self, folder: str) -> None:
        """Say that `folder` is being read, with a busy progress bar."""
        self.error_label.setVisible(False)
        self.header.setText(f"Loading {folder} …")
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.open_button.setEnabled(False)

    @Slot(int, int)
    def set_progress(self, done: int, total: int) -> None:
        """Show how many images have been checked."""
        self.progress.setVisible(True)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat("Checking images: %v / %m")

    @Slot(str)
    def show_error(self, message: str) -> None:
        """Show `message` inline in red."""
        self.progress.setVisible(False)
        self.open_button.setEnabled(True)
        if self.overview is None:
            self.header.setText("")
        else:
            self._set_header(self.overview.summary)
        self.error_label.setText(message)
        self.error_label.setVisible(True)

    # ----- showing ------------------------------------------------------------------------
    @Slot(object)
    def show_overview(self, overview: DatasetOverview) -> None:
        """Fill the header, charts, sample grid and problem list."""
        self.overview = overview
        summary = overview.summary
        self.progress.setVisible(False)
        self.error_label.setVisible(False)
        self.open_button.setEnabled(True)
        self._set_header(summary)
        self._plot_classes(summary)
        self._plot_counts(self.dx_type_chart, summary.get("dx_type"), "images", "dx_type")
        locations = dict(sorted((summary.get("localization") or {}).items(),
                                key=lambda kv: -kv[1])[:TOP_LOCATIONS])
        self._plot_counts(self.location_chart, locations, "images", "localization",
                          horizontal=True)
        age = summary.get("age") or {}
        self._plot_counts(self.age_chart, age.get("by_decade"), "images", "age")
        if age:
            self.age_chart.title.setText(
                f"<b>Age by decade</b> (mean {age.get('mean')}, median {age.get('median')}, "
                f"{age.get('missing', 0)} missing)")
        self._plot_counts(self.sex_chart, summary.get("sex"), "images", "sex")
        self._fill_samples(summary, overview.samples)
        self._fill_problems(summary.get("problems", []))
        self.stack.setCurrentIndex(1)

    def _set_header(self, summary: dict[str, Any]) -> None:
        n_problems = len(summary.get("problems", []))
        self.header.setText(
            f"<b>{summary['root']}</b><br>layout {summary['layout']} · "
            f"{summary['n_images']} images · {summary['n_lesions']} lesions · "
            f"{len(summary['classes'])} classes · {n_problems} "
            f"problem{'s' if n_problems != 1 else ''}")

    def _plot_classes(self, summary: dict[str, Any]) -> None:
        per_class: dict[str, dict[str, Any]] = summary["per_class"]
        codes = list(per_class)
        ax = self.class_chart.ax
        ax.clear()
        ax.set_axis_on()
        x = np.arange(len(codes))
        images = [per_class[c]["images"] for c in codes]
        lesions = [per_class[c]["lesions"] for c in codes]
        bars = ax.bar(x - 0.2, images, 0.4, label="images", color="#4f81bd")
        ax.bar_label(bars, fontsize=8)
        bars = ax.bar(x + 0.2, lesions, 0.4, label="lesions", color="#f79646")
        ax.bar_label(bars, fontsize=8)
        ax.set_xticks(x, codes, rotation=30 if len(codes) > 10 else 0)
        ax.set_ylabel("count")
        ax.margins(y=0.12)
        names = "\n".join(f"{c}: {per_class[c].get('full_name', full_name(c))}" for c in codes)
        ax.legend(loc="upper left", fontsize=8)
        if len(codes) <= 12:
            ax.text(1.02, 1.0, names, transform=ax.transAxes, va="top", fontsize=8)
        self.class_chart.canvas.setToolTip(names)
        self.class_chart.canvas.draw_idle()

    @staticmethod
    def _plot_counts(panel: PlotPanel, counts: dict[str, int] | None, unit: str, column: str,
                     horizontal: bool = False) -> None:
        if not counts:
            panel.message(f"This dataset has no {column} information")
            return
        ax = panel.ax
        ax.clear()
        ax.set_axis_on()
        labels, values = list(counts), list(counts.values())
        if horizontal:
            bars = ax.barh(labels[::-1], values[::-1], color="#4f81bd")
            ax.set_xlabel(unit)
            ax.margins(x=0.15)
        else:
            bars = ax.bar(labels, values, color="#4f81bd")
            ax.set_ylabel(unit)
            ax.margins(y=0.15)
            if len(labels) > 5:
                ax.tick_params(axis="x", labelrotation=45)
        ax.bar_label(bars, fontsize=8)
        panel.canvas.draw_idle()

    def _fill_samples(self, summary: dict[str, Any],
                      samples: dict[str, list[tuple[str, np.ndarray]]]) -> None:
        while self.samples_layout.count():
            child = self.samples_layout.takeAt(0)
            widget = child.widget() if child is not None else None
            if widget is not None:
                widget.deleteLater()
        self.sample_labels = {}
        per_class: dict[str, dict[str, Any]] = summary["per_class"]
        for row, code in enumerate(per_class):
            name = per_class[code].get("full_name", full_name(code))
            label = QLabel(themed(f"<b>{code}</b><br>{name}<br><span style='color: #666'>"
                                  f"{per_class[code]['images']} images</span>"))
            label.setWordWrap(True)
            label.setFixedWidth(170)
            self.samples_layout.addWidget(label, row, 0)
            thumbs: list[QLabel] = []
            for col, (image_id, image) in enumerate(samples.get(code, []), start=1):
                thumb = QLabel()
                thumb.setPixmap(array_to_pixmap(image))
                thumb.setToolTip(image_id)
                self.samples_layout.addWidget(thumb, row, col)
                thumbs.append(thumb)
            if not thumbs:
                none = QLabel("no readable images")
                self.samples_layout.addWidget(none, row, 1)
            self.sample_labels[code] = thumbs

    def _fill_problems(self, problems: list[dict[str, str]]) -> None:
        self.problems_list.clear()
        self.problems_list.addItems([problem_line(p) for p in problems])
        n = len(problems)
        self.problems_heading.setText(
            f"<b>{n} problem{'s' if n != 1 else ''} found</b>" if n else "<b>No problems found</b>")
        self.tabs.setTabText(3, f"Problems ({n})")
