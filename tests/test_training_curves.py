"""The Train view's live curves: drawn off the GUI thread, they show each epoch's points."""

from __future__ import annotations

import multiprocessing

from PySide6.QtGui import QImage

from gui.curve_painter import CurvePainter
from gui.curves_picture import CurvesPicture, render_curves
from gui.training_curves import TrainingCurves

LOGS = {"loss": 2.4, "val_loss": 2.6, "accuracy": 0.4, "val_accuracy": 0.35,
        "balanced_accuracy": 0.3, "val_balanced_accuracy": 0.28}
LIGHT = {"window": "#efefef", "fg": "#000000", "muted": "#666666", "base": "#ffffff"}


def coloured_pixels(image: QImage) -> int:
    """Pixels that are neither grey nor white: the plotted lines and markers."""
    count = 0
    for x in range(0, image.width(), 2):
        for y in range(0, image.height(), 2):
            colour = image.pixelColor(x, y)
            if max(colour.red(), colour.green(), colour.blue()) - min(
                    colour.red(), colour.green(), colour.blue()) > 60:
                count += 1
    return count


def test_an_epoch_appears_as_coloured_lines_and_the_loss_axis_grows(qtbot) -> None:
    curves = TrainingCurves()
    qtbot.addWidget(curves)
    curves.resize(600, 320)
    curves.show()
    qtbot.waitUntil(curves.is_current, timeout=20000)  # the painter process starts first
    empty = curves.image()
    assert empty is not None and coloured_pixels(empty) < 20  # no lines yet
    curves.start_run(5)
    curves.add_epoch(1, LOGS)
    curves.add_epoch(2, {k: v * 0.8 for k, v in LOGS.items()})
    qtbot.waitUntil(curves.is_current, timeout=20000)
    drawn = curves.image()
    assert drawn is not None and drawn.width() == 600 and drawn.height() == 320
    assert coloured_pixels(drawn) > 100
    assert curves.point_count() == 12


def test_the_curves_still_draw_where_no_painter_process_can_start(qtbot, monkeypatch) -> None:
    def refuse(_method: str) -> None:
        raise OSError("no processes here")

    monkeypatch.setattr(multiprocessing, "get_context", refuse)
    painter = CurvePainter()
    picture = CurvesPicture(points={"loss": ((1, 0.5), (2, 0.4))}, epochs=3, width=300,
                            height=200, pixel_ratio=1.0, colours=LIGHT)
    with qtbot.waitSignal(painter.signals.drawn, timeout=20000) as drawn:
        painter.submit(7, 1, picture)
    key, number, image = drawn.args
    assert (key, number) == (7, 1) and (image.width(), image.height()) == (300, 200)


def test_a_2x_screen_gets_a_picture_with_twice_the_pixels() -> None:
    picture = CurvesPicture(points={"loss": ((1, 3.0),)}, epochs=2, width=400, height=250,
                            pixel_ratio=2.0, colours=LIGHT)
    pixels = render_curves(picture)
    assert (pixels.width, pixels.height) == (800, 500)
    assert len(pixels.rgba) == 800 * 500 * 4
