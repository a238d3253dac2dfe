"""Live loss and accuracy curves for training and validation, updated in place each epoch.

Each epoch only the lines are redrawn (blitting over a saved background): the axes, ticks
and legends are drawn once per run, or again when the loss outgrows its axis or the widget
is resized. The x axis spans the run's epochs with integer ticks; accuracy spans 0 to 1.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QWidget

from gui.plot_canvas import PlotCanvas

# (history key, panel, legend label, line style)
SERIES = (("loss", "loss", "train", "-o"), ("val_loss", "loss", "val", "--s"),
          ("accuracy", "accuracy", "train", "-o"),
          ("val_accuracy", "accuracy", "val", "--s"),
          ("balanced_accuracy", "accuracy", "train, balanced", ":^"),
          ("val_balanced_accuracy", "accuracy", "val, balanced", "-.v"))
EMPTY_TEXT = "Curves appear here after the first epoch"


class TrainingCurves(PlotCanvas):
    """Two panels (loss, accuracy), each with a training and a validation line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, width=6, height=3, nrows=1, ncols=2)
        self.points: dict[str, list[tuple[float, float]]] = {key: [] for key, *_ in SERIES}
        self.lines: dict[str, Any] = {}
        self.empty_notes: list[Any] = []
        self.epochs = 1
        self._background: Any = None
        self.full_draws = 0  # how often the whole figure was drawn (the rest were blits)
        self.when_created(self._draw_panels)

    def _draw_panels(self) -> None:
        from matplotlib.ticker import MaxNLocator

        panels = {"loss": self.axes[0], "accuracy": self.axes[1]}
        for key, panel, label, style in SERIES:
            (self.lines[key],) = panels[panel].plot([], [], style, markersize=3, label=label,
                                                    animated=True)
        for name, ax in panels.items():
            ax.set_title("Accuracy" if name == "accuracy" else "Loss")
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=8, min_n_ticks=1))
            ax.grid(alpha=0.3)
            self.empty_notes.append(ax.text(0.5, 0.5, EMPTY_TEXT, transform=ax.transAxes,
                                            ha="center", va="center", color="0.45",
                                            wrap=True, fontsize=9))
        panels["accuracy"].set_ylim(0, 1.0)
        panels["loss"].set_ylim(0, 1.0)
        self._set_x_range()
        self.mpl_connect("draw_event", self._on_draw)
        self.keep_layout()  # redrawn in the GUI thread every epoch
        self.draw_idle()

    def _set_x_range(self) -> None:
        for ax in self.axes:
            ax.set_xlim(0.5, max(self.epochs, 1) + 0.5)

    def _legends(self, visible: bool) -> None:
        for ax in self.axes:
            if visible and ax.get_legend() is None:
                ax.legend(loc="lower left", fontsize="x-small", framealpha=0.7)
            elif not visible and ax.get_legend() is not None:
                ax.get_legend().remove()

    def _on_draw(self, _event: Any) -> None:
        """After a full draw: keep the background, then draw the lines over it."""
        self.full_draws += 1
        canvas = self.mpl_canvas
        self._background = canvas.copy_from_bbox(self.figure.bbox)
        self._draw_lines()

    def _draw_lines(self) -> None:
        for key, line in self.lines.items():
            if self.points[key]:
                line.axes.draw_artist(line)

    def start_run(self, epochs: int) -> None:
        """Forget all points and size the x axis for a run of `epochs` epochs."""
        self.points = {key: [] for key, *_ in SERIES}
        self.epochs = max(1, epochs)
        if not self.is_created():  # no lines yet: they start empty
            return
        for line in self.lines.values():
            line.set_data([], [])
        for note in self.empty_notes:
            note.set_visible(True)
        self._legends(False)
        self.axes[0].set_ylim(0, 1.0)
        self._set_x_range()
        self.draw_idle()

    def add_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        """Append one epoch's values; redraw only the lines when the axes still fit."""
        axes = self.axes  # makes the figure and its (empty) lines on first use
        for key, *_ in SERIES:
            if key in logs:
                self.points[key].append((epoch, logs[key]))
                xs, ys = zip(*self.points[key], strict=True)
                self.lines[key].set_data(xs, ys)
        full = self._background is None or any(n.get_visible() for n in self.empty_notes)
        for note in self.empty_notes:
            note.set_visible(False)
        if full:
            self._legends(True)
        top = max((v for k in ("loss", "val_loss") for _, v in self.points[k]), default=0.0)
        if top > axes[0].get_ylim()[1]:
            axes[0].set_ylim(0, top * 1.15)
            full = True
        if epoch > self.epochs:
            self.epochs = epoch
            self._set_x_range()
            full = True
        if full:  # new tick labels may need other margins: lay the figure out again once
            self.figure.set_layout_engine("constrained")
            self.draw_idle()
            return
        canvas = self.mpl_canvas
        canvas.restore_region(self._background)
        self._draw_lines()
        canvas.blit(self.figure.bbox)

    def point_count(self) -> int:
        """How many points the curves hold in total."""
        return sum(len(v) for v in self.points.values())
