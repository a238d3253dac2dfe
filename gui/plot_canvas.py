"""A matplotlib figure embedded in Qt, with a 'Save as PNG' helper.

The figure is made on first use (drawing on `axes`, reading `figure`) or when the widget
first shows, not when it is built: importing matplotlib takes about half a second, and the
main window builds every view's plots before it can show.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QSize
from PySide6.QtGui import QGuiApplication, QShowEvent
from PySide6.QtWidgets import QFileDialog, QMessageBox, QSizePolicy, QVBoxLayout, QWidget

from gui.theme import style_figure

if TYPE_CHECKING:
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.figure import Figure

DPI = 100  # matplotlib's default figure dpi: the size hint until the figure exists


@cache
def _themed_canvas() -> type[FigureCanvasQTAgg]:
    """Matplotlib's Qt canvas, colouring its figure from its palette before each full draw."""
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg

    class ThemedCanvas(FigureCanvasQTAgg):
        def draw(self) -> None:
            style_figure(self.figure, QGuiApplication.palette())
            super().draw()

    return ThemedCanvas


class PlotCanvas(QWidget):
    """A figure that redraws in place; `axes` holds its subplots, `figure` the figure.

    The matplotlib canvas (`mpl_canvas`) fills this widget; it is created on first access to
    `mpl_canvas`, `figure`, `axes`, `draw`, `draw_idle` or `mpl_connect`, or on first show.
    Set-up that needs the figure (lines, titles, event handlers) goes in `when_created`.
    """

    def __init__(self, parent: QWidget | None = None, width: float = 5, height: float = 3.5,
                 nrows: int = 1, ncols: int = 1) -> None:
        super().__init__(parent)
        self._shape = (width, height, nrows, ncols)
        self._canvas: FigureCanvasQTAgg | None = None
        self._axes: list[Any] = []
        self._on_created: list[Callable[[], None]] = []
        self._box = QVBoxLayout(self)
        self._box.setContentsMargins(0, 0, 0, 0)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(180)

    # ----- the lazily created figure ---------------------------------------------------------
    def is_created(self) -> bool:
        """Whether the matplotlib figure exists yet."""
        return self._canvas is not None

    def when_created(self, callback: Callable[[], None]) -> None:
        """Call `callback()` once the figure exists (at once if it already does)."""
        if self._canvas is not None:
            callback()
        else:
            self._on_created.append(callback)

    @property
    def mpl_canvas(self) -> FigureCanvasQTAgg:
        """The matplotlib canvas widget (created, with its figure and axes, on first use)."""
        return self._create()

    def _create(self) -> FigureCanvasQTAgg:
        if self._canvas is None:
            from matplotlib.figure import Figure

            width, height, nrows, ncols = self._shape
            figure = Figure(figsize=(width, height), layout="constrained")
            canvas = _themed_canvas()(figure)
            self._box.addWidget(canvas)
            self._canvas = canvas
            self._axes = figure.subplots(nrows, ncols, squeeze=False).ravel().tolist()
            style_figure(figure, QGuiApplication.palette())
            callbacks, self._on_created = self._on_created, []
            for callback in callbacks:
                callback()
        return self._canvas

    @property
    def figure(self) -> Figure:
        """The matplotlib figure."""
        return self.mpl_canvas.figure

    @property
    def axes(self) -> list[Any]:
        """The figure's axes, row by row."""
        self._create()
        return self._axes

    def draw(self) -> None:
        """Render the figure now."""
        self.mpl_canvas.draw()

    def draw_idle(self) -> None:
        """Render the figure when the event loop is next idle."""
        self.mpl_canvas.draw_idle()

    def mpl_connect(self, event: str, handler: Callable[[Any], Any]) -> int:
        """Connect `handler` to a matplotlib event of the canvas; returns its id."""
        canvas: Any = self.mpl_canvas  # its overloads want a literal event name
        return int(canvas.mpl_connect(event, handler))

    def sizeHint(self) -> QSize:
        if self._canvas is None:
            width, height, *_ = self._shape
            return QSize(round(width * DPI), round(height * DPI))
        return super().sizeHint()

    def changeEvent(self, event: QEvent) -> None:
        if self._canvas is not None and event.type() in (
                QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            style_figure(self._canvas.figure, QGuiApplication.palette())  # the theme changed
            self._canvas.draw_idle()
        super().changeEvent(event)

    def showEvent(self, event: QShowEvent) -> None:
        self._create()  # the user sees the empty axes and titles, as before any data
        super().showEvent(event)

    # ----- saving ----------------------------------------------------------------------------
    def save_png(self, suggested: str = "plot.png") -> None:
        """Ask where, then save the figure as PNG; errors are shown, not raised."""
        path, _ = QFileDialog.getSaveFileName(self, "Save plot", suggested, "PNG image (*.png)")
        if not path:
            return
        try:
            self.figure.savefig(path if path.lower().endswith(".png") else path + ".png", dpi=150)
        except OSError as exc:
            QMessageBox.warning(self, "Could not save the plot", str(exc))
