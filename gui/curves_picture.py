"""The training curves drawn to pixels, and the painter process that draws them; no Qt.

`gui.training_curves` shows the pixels. Drawing the figure (matplotlib, Agg) takes 100-250 ms
of Python; in a thread of the app's process it still held the interpreter lock long enough
to stall the GUI thread by up to 88 ms (a probe, docs/benchmarks.md), so it runs in a
process of its own, `paint_forever`, fed through a `multiprocessing` queue.
"""

from __future__ import annotations

import os
import queue as queue_module
from dataclasses import dataclass
from typing import Any

from gui.figure_colours import colour_figure

# (history key, panel, legend label, line style)
SERIES = (("loss", "loss", "train", "-o"), ("val_loss", "loss", "val", "--s"),
          ("accuracy", "accuracy", "train", "-o"),
          ("val_accuracy", "accuracy", "val", "--s"),
          ("balanced_accuracy", "accuracy", "train, balanced", ":^"),
          ("val_balanced_accuracy", "accuracy", "val, balanced", "-.v"))
EMPTY_TEXT = "Curves appear here after the first epoch"
DPI = 100
PARENT_CHECK_S = 1.0  # how often an idle painter looks whether the app still lives


@dataclass(frozen=True)
class CurvesPicture:
    """Everything one drawing of the curves needs: plain data, picklable."""

    points: dict[str, tuple[tuple[float, float], ...]]
    epochs: int
    width: int  # logical pixels
    height: int
    pixel_ratio: float
    colours: dict[str, str]  # `gui.figure_colours.colour_figure`'s four


@dataclass(frozen=True)
class Pixels:
    """A drawing: RGBA bytes, row by row, `width` x `height` physical pixels."""

    width: int
    height: int
    pixel_ratio: float
    rgba: bytes


def render_curves(picture: CurvesPicture) -> Pixels:
    """Draw `picture`: a loss panel and an accuracy panel, train and validation lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(max(picture.width, 50) / DPI, max(picture.height, 50) / DPI),
                    dpi=DPI * picture.pixel_ratio, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    loss_ax, accuracy_ax = figure.subplots(1, 2)
    panels = {"loss": loss_ax, "accuracy": accuracy_ax}
    any_points = any(picture.points.values())
    for key, panel, label, style in SERIES:
        points = picture.points.get(key, ())
        xs, ys = zip(*points, strict=True) if points else ((), ())
        panels[panel].plot(xs, ys, style, markersize=3, label=label)
    for name, ax in panels.items():
        ax.set_title("Accuracy" if name == "accuracy" else "Loss")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=8, min_n_ticks=1))
        ax.grid(alpha=0.3)
        ax.set_xlim(0.5, max(picture.epochs, 1) + 0.5)
        if any_points:
            ax.legend(loc="lower left", fontsize="x-small", framealpha=0.7)
        else:
            ax.text(0.5, 0.5, EMPTY_TEXT, transform=ax.transAxes, ha="center", va="center",
                    color="0.45", wrap=True, fontsize=9)
    accuracy_ax.set_ylim(0, 1.0)
    losses = [v for k in ("loss", "val_loss") for _, v in picture.points.get(k, ())]
    top = max(losses, default=0.0)
    loss_ax.set_ylim(0, top * 1.15 if top > 1.0 else 1.0)
    colour_figure(figure, picture.colours)
    canvas.draw()
    width, height = canvas.get_width_height(physical=True)
    return Pixels(width, height, picture.pixel_ratio, bytes(canvas.buffer_rgba()))


def paint_forever(requests: Any, results: Any, parent_pid: int) -> None:
    """The painter process: draw each request `(key, number, CurvesPicture)` into `results`
    as `(key, number, Pixels)`, only the newest of each key when several wait; end on None
    or when the app's process is gone."""
    import matplotlib

    matplotlib.use("Agg")
    while True:
        try:
            first = requests.get(timeout=PARENT_CHECK_S)
        except queue_module.Empty:
            if os.getppid() != parent_pid:
                return
            continue
        waiting = [first]
        while True:  # drain: a resize or a burst of epochs costs one drawing
            try:
                waiting.append(requests.get_nowait())
            except queue_module.Empty:
                break
        if any(item is None for item in waiting):
            return
        newest: dict[Any, tuple[int, CurvesPicture]] = {}
        for key, number, picture in waiting:
            newest[key] = (number, picture)
        for key, (number, picture) in newest.items():
            try:
                results.put((key, number, render_curves(picture)))
            except Exception as exc:  # noqa: BLE001  (one bad drawing must not end the painter)
                results.put((key, number, f"{type(exc).__name__}: {exc}"))
