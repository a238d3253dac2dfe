"""Plot widgets: a titled PlotCanvas with 'Save PNG…', and a clickable confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from gui.figure_colours import KEEP_COLOUR
from gui.plot_canvas import PlotCanvas


class PlotPanel(QWidget):
    """A PlotCanvas under a bold title, with a 'Save PNG…' button; draw on `canvas.axes`."""

    def __init__(self, title: str, filename: str, parent: QWidget | None = None,
                 width: float = 5, height: float = 3.5) -> None:
        super().__init__(parent)
        self.canvas = PlotCanvas(self, width, height)
        self.title = QLabel(f"<b>{title}</b>")
        self.save_button = QPushButton("Save PNG…")
        self.save_button.setToolTip("Save this plot as a PNG image")
        self.save_button.clicked.connect(lambda: self.canvas.save_png(filename))
        self.top = QHBoxLayout()
        self.top.addWidget(self.title, 1)
        self.top.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(self.top)
        layout.addWidget(self.canvas, 1)

    @property
    def ax(self) -> Any:
        """The (single) matplotlib axes of the canvas."""
        return self.canvas.axes[0]

    def message(self, text: str) -> None:
        """Clear the plot and write `text` in its middle (e.g. 'no data')."""
        ax = self.ax
        ax.clear()
        ax.set_axis_off()
        ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, color="0.4",
                transform=ax.transAxes)
        self.canvas.draw_idle()


class ConfusionMatrixWidget(PlotPanel):
    """A confusion-matrix heatmap; clicking a cell emits `cell_clicked(true, predicted)`."""

    cell_clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Confusion matrix", "confusion_matrix.png", parent, 5, 4.5)
        self.normalise_box = QCheckBox("Row-normalised")
        self.normalise_box.setToolTip("Show each cell as a fraction of its true class's images")
        self.normalise_box.toggled.connect(self._redraw)
        self.top.insertWidget(1, self.normalise_box)
        self.matrix = np.zeros((0, 0), dtype=int)
        self.classes: list[str] = []
        self.selected: tuple[int, int] | None = None
        self._colorbar: Any = None
        self.canvas.setToolTip("Click a cell to see the images behind it")
        self.canvas.when_created(self._figure_created)

    def _figure_created(self) -> None:
        self.canvas.mpl_connect("button_press_event", self._on_press)
        self.message("No results yet")

    def set_matrix(self, matrix: list[list[int]], classes: list[str]) -> None:
        """Show `matrix` (rows: true class, columns: predicted class) for `classes`."""
        self.matrix = np.asarray(matrix, dtype=int).reshape(len(classes), len(classes))
        self.classes = list(classes)
        self.selected = None
        self._redraw()

    def is_normalised(self) -> bool:
        """Whether cells show row fractions instead of counts."""
        return self.normalise_box.isChecked()

    def fractions(self) -> np.ndarray:
        """Each row divided by its sum (rows of absent classes stay 0)."""
        totals = self.matrix.sum(axis=1, keepdims=True)
        return np.divide(self.matrix, totals, out=np.zeros(self.matrix.shape),
                         where=totals > 0)

    def cell_text(self, row: int, col: int) -> str:
        """The text drawn in cell (true `row`, predicted `col`)."""
        if self.is_normalised():
            if self.matrix[row].sum() == 0:
                return "–"
            return f"{self.fractions()[row, col]:.2f}"
        return str(int(self.matrix[row, col]))

    def click_cell(self, row: int, col: int) -> None:
        """Select a cell and emit `cell_clicked`, as a mouse click on it does."""
        k = len(self.classes)
        if not (0 <= row < k and 0 <= col < k):
            return
        self.selected = (row, col)
        self._redraw()
        self.cell_clicked.emit(row, col)

    def _on_press(self, event: Any) -> None:
        if event.inaxes is not self.ax or event.xdata is None or event.ydata is None:
            return
        if not self.classes:
            return
        self.click_cell(int(round(event.ydata)), int(round(event.xdata)))

    @Slot()
    def _redraw(self) -> None:
        if not self.classes:
            return
        if self._colorbar is not None:  # before clearing: it needs its image to detach
            self._colorbar.remove()
            self._colorbar = None
        ax = self.ax
        ax.clear()
        ax.set_axis_on()
        fractions = self.fractions()
        # the colours say what the numbers say: fractions when normalised, else counts
        shown = fractions if self.is_normalised() else self.matrix
        top = 1.0 if self.is_normalised() else max(1, int(self.matrix.max()))
        image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=top)
        self._colorbar = self.canvas.figure.colorbar(image, ax=ax, shrink=0.8)
        self._colorbar.set_label("fraction of the true class" if self.is_normalised()
                                 else "images")
        k = len(self.classes)
        small = 7 if k > 8 else 9
        for row in range(k):
            for col in range(k):
                colour = "white" if shown[row, col] > 0.5 * top else "black"
                ax.text(col, row, self.cell_text(row, col), ha="center", va="center",
                        color=colour, fontsize=small, gid=KEEP_COLOUR)  # on its cell
        ax.set_xticks(range(k), self.classes, rotation=45, ha="right")
        ax.set_yticks(range(k), self.classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if self.selected is not None:
            from matplotlib.patches import Rectangle

            row, col = self.selected
            ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red",
                                   linewidth=2))
        self.canvas.draw_idle()
