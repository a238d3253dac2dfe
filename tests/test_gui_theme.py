"""View ▸ Theme: System follows the desktop, Light and Dark are forced; charts follow it too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette

from gui import theme
from gui.main_window import MainWindow


@pytest.fixture(autouse=True)
def light_afterwards() -> Iterator[None]:
    """The palette belongs to the whole application: leave it light for other tests."""
    yield
    theme.apply_theme("light")


def open_window(qtbot) -> MainWindow:
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    return win


def window_lightness(win: MainWindow) -> int:
    return win.palette().color(QPalette.ColorRole.Window).lightness()


def wait_dark(qtbot, win: MainWindow, dark: bool) -> None:
    """Wait for the window's palette (palette changes reach widgets as posted events)."""
    qtbot.waitUntil(lambda: (window_lightness(win) < 100) if dark
                    else (window_lightness(win) > 155), timeout=2000)


def figure_lightness(canvas) -> int:
    from matplotlib.colors import to_hex

    return QColor(to_hex(canvas.figure.get_facecolor())).lightness()


def curves_lightness(curves) -> tuple[int, int, int]:
    """The training curves' drawn image as the user sees it: its corner's lightness, and
    the lightest and darkest pixels of its top band (the panel titles)."""
    image = curves.image()
    if image is None:
        return -1, -1, -1
    band = [image.pixelColor(x, y).lightness()
            for x in range(0, image.width(), 2) for y in range(0, image.height() // 8)]
    return image.pixelColor(1, 1).lightness(), max(band), min(band)


def text_lightness(text) -> int:
    from matplotlib.colors import to_hex

    return QColor(to_hex(text.get_color())).lightness()


def test_dark_and_light_colour_the_window_the_charts_and_hard_coded_colours(qtbot) -> None:
    win = open_window(qtbot)
    chart, curves = win.classify_view.chart, win.train_view.curves
    win.tabs.setCurrentWidget(win.train_view)  # the curves are drawn once they show
    caption = win.classify_view.image_panel.caption  # the Grad-CAM legend
    win.theme.actions["dark"].trigger()
    assert win.theme.actions["dark"].isChecked()
    wait_dark(qtbot, win, True)
    # dark behind light titles
    qtbot.waitUntil(lambda: figure_lightness(chart) < 100 and curves_lightness(curves)[0] < 100
                    and curves_lightness(curves)[1] > 155, timeout=5000)
    assert "#555" not in caption.styleSheet() and theme.DARK_TWINS["#555"] in caption.styleSheet()
    result = win.classify_view.result_label  # a style sheet without colours: the palette's
    qtbot.waitUntil(lambda: result.palette().color(QPalette.ColorRole.WindowText)
                    .lightness() > 155, timeout=2000)
    win.theme.actions["light"].trigger()
    wait_dark(qtbot, win, False)
    qtbot.waitUntil(lambda: figure_lightness(chart) > 155 and curves_lightness(curves)[0] > 155
                    and curves_lightness(curves)[2] < 100, timeout=5000)
    assert "#555" in caption.styleSheet()


def test_a_confusion_matrix_keeps_its_cell_colours_under_dark(qtbot) -> None:
    from gui.confusion_matrix import ConfusionMatrixWidget

    win = open_window(qtbot)
    matrix = ConfusionMatrixWidget()
    qtbot.addWidget(matrix)
    matrix.set_matrix([[9, 1], [0, 10]], ["mel", "nv"])
    win.theme.actions["dark"].trigger()
    qtbot.waitUntil(lambda: figure_lightness(matrix.canvas) < 100)
    matrix.canvas.draw()
    cells = {t.get_text(): t.get_color() for t in matrix.ax.texts}
    assert cells["1"] == "black" and cells["9"] == "white"  # dark on light cells, and back
    assert text_lightness(matrix.ax.xaxis.label) > 155


def test_the_choice_is_restored_on_the_next_launch(qtbot) -> None:
    first = open_window(qtbot)
    first.theme.actions["dark"].trigger()
    first.close()
    theme.apply_theme("light")  # as in a new process
    second = open_window(qtbot)
    assert second.theme.choice == "dark" and second.theme.actions["dark"].isChecked()
    wait_dark(qtbot, second, True)


def test_system_follows_the_desktop(qtbot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(theme, "system_scheme", lambda: Qt.ColorScheme.Dark)
    win = open_window(qtbot)
    assert win.theme.choice == "system" and win.theme.actions["system"].isChecked()
    wait_dark(qtbot, win, True)  # a dark desktop at launch
    hints = QGuiApplication.styleHints()
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)  # the desktop turns light
    wait_dark(qtbot, win, False)
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    wait_dark(qtbot, win, True)
    win.theme.actions["light"].trigger()  # a forced choice ignores the desktop
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    wait_dark(qtbot, win, False)
