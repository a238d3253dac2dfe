"""A matplotlib figure embedded in Qt, with a 'Save as PNG' helper."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PySide6.QtWidgets import QFileDialog, QMessageBox, QSizePolicy, QWidget


class PlotCanvas(FigureCanvasQTAgg):
    """A figure canvas that redraws in place; `figure` holds the axes."""

    def __init__(self, parent: QWidget | None = None, width: float = 5, height: float = 3.5,
                 nrows: int = 1, ncols: int = 1) -> None:
        self.figure = Figure(figsize=(width, height), layout="constrained")
        super().__init__(self.figure)
        self.setParent(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(180)
        self.axes = self.figure.subplots(nrows, ncols, squeeze=False).ravel().tolist()

    def save_png(self, suggested: str = "plot.png") -> None:
        """Ask where, then save the figure as PNG; errors are shown, not raised."""
        path, _ = QFileDialog.getSaveFileName(self, "Save plot", suggested, "PNG image (*.png)")
        if not path:
            return
        try:
            self.figure.savefig(path if path.lower().endswith(".png") else path + ".png", dpi=150)
        except OSError as exc:
            QMessageBox.warning(self, "Could not save the plot", str(exc))
