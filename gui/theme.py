"""Light and dark themes: System (follows the desktop's colour scheme), Light or Dark.

Dark is the Fusion style with a dark palette; Light is the app's starting style with the
desktop's palette (Fusion's light one where that is dark). On Qt 6.8+ the choice is also
passed to `QStyleHints.setColorScheme`, so native window frames follow it. The choice is kept
in the app's settings (`view/theme`).

Colours that widgets hard-code in style sheets and rich text are written for a light
background; `themed` swaps the few that would be hard to read on a dark one. Matplotlib
figures take their colours from the palette with `style_figure` (see `gui.plot_canvas`).
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QMenu, QWidget

from gui.figure_colours import colour_figure
from gui.settings import app_settings

THEMES = {"system": "&System", "light": "&Light", "dark": "&Dark"}
SETTING = "view/theme"

# foreground colours written for a light background -> their dark-background twins
DARK_TWINS = {"#555": "#b4b4b4", "#666": "#aaaaaa", "#a15c00": "#f0a35a",
              "#2f5f8a": "#8cbce8", "#1b5e20": "#8fd393", "#b00020": "#ff8f8f"}
DARK_COLOURS = {  # a common dark Fusion palette
    QPalette.ColorRole.Window: "#353535", QPalette.ColorRole.WindowText: "#ececec",
    QPalette.ColorRole.Base: "#262626", QPalette.ColorRole.AlternateBase: "#303030",
    QPalette.ColorRole.ToolTipBase: "#262626", QPalette.ColorRole.ToolTipText: "#ececec",
    QPalette.ColorRole.PlaceholderText: "#9a9a9a", QPalette.ColorRole.Text: "#ececec",
    QPalette.ColorRole.Button: "#3c3c3c", QPalette.ColorRole.ButtonText: "#ececec",
    QPalette.ColorRole.BrightText: "#ff6b6b", QPalette.ColorRole.Light: "#505050",
    QPalette.ColorRole.Midlight: "#444444", QPalette.ColorRole.Mid: "#2c2c2c",
    QPalette.ColorRole.Dark: "#232323", QPalette.ColorRole.Shadow: "#141414",
    QPalette.ColorRole.Highlight: "#2a82da", QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#6cb4ff", QPalette.ColorRole.LinkVisited: "#b48cff",
}
DISABLED = (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text,
            QPalette.ColorRole.ButtonText, QPalette.ColorRole.HighlightedText)

_start_style = ""  # the style the app started with, for Light


def dark_palette() -> QPalette:
    """The palette of the Dark theme."""
    palette = QPalette()
    for role, colour in DARK_COLOURS.items():
        palette.setColor(role, QColor(colour))
    for role in DISABLED:
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7f7f7f"))
    return palette


def light_palette() -> QPalette:
    """The palette of the Light theme where the desktop's own is dark: Fusion's light one."""
    return QPalette(QColor("#efefef"), QColor("#efefef"))


def is_dark(palette: QPalette | None = None) -> bool:
    """Whether `palette` (default: the application's) has a dark window colour."""
    palette = palette if palette is not None else QGuiApplication.palette()
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def saved_theme() -> str:
    """The remembered choice: 'system' (the default), 'light' or 'dark'."""
    value = str(app_settings().value(SETTING, "system"))
    return value if value in THEMES else "system"


def system_scheme() -> Qt.ColorScheme:
    """The desktop's colour scheme (Unknown where the platform does not say)."""
    return QGuiApplication.styleHints().colorScheme()


def resolve(choice: str, scheme: Qt.ColorScheme | None = None) -> str:
    """'light' or 'dark': what `choice` means under the desktop's `scheme`."""
    if choice != "system":
        return choice
    scheme = system_scheme() if scheme is None else scheme
    return "dark" if scheme == Qt.ColorScheme.Dark else "light"


def themed(text: str, dark: bool | None = None) -> str:
    """`text` (a style sheet or rich text) with its light-background colours swapped for
    their dark twins when the theme is dark, and back when it is light."""
    dark = is_dark() if dark is None else dark
    pairs = DARK_TWINS.items() if dark else ((b, a) for a, b in DARK_TWINS.items())
    for old, new in pairs:
        text = re.sub(re.escape(old) + r"(?![0-9a-fA-F])", new, text, flags=re.IGNORECASE)
    return text


def _recolour_widgets(dark: bool) -> None:
    """Swap the hard-coded colours of every widget's style sheet and rich-text label."""
    for widget in QApplication.allWidgets():
        if sheet := widget.styleSheet():  # set even when unchanged: it takes the new palette
            widget.setStyleSheet(themed(sheet, dark))
        label = widget if isinstance(widget, QLabel) else None
        text = label.text() if label is not None else ""
        if label is not None and "#" in text and (new := themed(text, dark)) != text:
            label.setText(new)


def apply_theme(choice: str, scheme: Qt.ColorScheme | None = None) -> str:
    """Apply `choice` ('system', 'light' or 'dark') to the application; returns 'light' or
    'dark', what it resolved to."""
    global _start_style
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return "light"
    hints = QGuiApplication.styleHints()
    if hasattr(hints, "setColorScheme"):  # Qt 6.8+: native frames follow too
        if choice == "system":
            hints.unsetColorScheme()
        else:
            hints.setColorScheme(Qt.ColorScheme.Dark if choice == "dark"
                                 else Qt.ColorScheme.Light)
    resolved = resolve(choice, scheme)
    style = app.style()
    current = style.name() if style is not None else ""
    _start_style = _start_style or current or "Fusion"
    wanted = "Fusion" if resolved == "dark" else _start_style
    if current.lower() != wanted.lower():
        app.setStyle(wanted)  # an unknown name changes nothing
    if resolved == "dark":
        app.setPalette(dark_palette())
    else:
        app.setPalette(QPalette())  # no role set: the desktop's (or the style's) own palette
        if is_dark(app.palette()):
            app.setPalette(light_palette())
    _recolour_widgets(resolved == "dark")
    return resolved


class ThemeControl(QObject):
    """The View ▸ Theme choice: applies it, remembers it, and follows the desktop under
    System. `changed` says 'light' or 'dark' after each change."""

    changed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.choice = saved_theme()
        self.actions: dict[str, QAction] = {}
        QGuiApplication.styleHints().colorSchemeChanged.connect(self.on_scheme_changed)

    def apply(self) -> None:
        """Apply the current choice."""
        self.changed.emit(apply_theme(self.choice))

    def choose(self, choice: str) -> None:
        """Switch to `choice`, remember it and tick its menu entry."""
        self.choice = choice if choice in THEMES else "system"
        settings = app_settings()
        settings.setValue(SETTING, self.choice)
        settings.sync()
        if self.choice in self.actions:
            self.actions[self.choice].setChecked(True)
        self.apply()

    @Slot(Qt.ColorScheme)
    def on_scheme_changed(self, scheme: Qt.ColorScheme) -> None:
        """The desktop switched between light and dark: follow it under System."""
        if self.choice == "system":
            self.changed.emit(apply_theme("system", scheme))

    def add_menu(self, parent_menu: QMenu) -> QMenu:
        """Add a Theme submenu (System / Light / Dark, one checked) to `parent_menu`."""
        menu = parent_menu.addMenu("&Theme")
        group = QActionGroup(menu)
        group.setExclusive(True)
        for name, text in THEMES.items():
            action = QAction(text, menu)
            action.setCheckable(True)
            action.setChecked(name == self.choice)
            action.triggered.connect(partial(self.choose, name))
            group.addAction(action)
            menu.addAction(action)
            self.actions[name] = action
        return menu


def install_theme(window: QWidget, view_menu: QMenu) -> ThemeControl:
    """Apply the remembered theme and add View ▸ Theme; the control lives with `window`."""
    control = ThemeControl(window)
    control.add_menu(view_menu)
    control.apply()
    return control


# ----- matplotlib figures ------------------------------------------------------------------
def _mpl(colour: QColor) -> str:
    return str(colour.name())


def figure_colours(palette: QPalette) -> dict[str, str]:
    """The four colours `gui.figure_colours.colour_figure` needs, from `palette`."""
    window = palette.color(QPalette.ColorRole.Window)
    fg = palette.color(QPalette.ColorRole.WindowText)
    muted = QColor.fromRgbF(0.6 * fg.redF() + 0.4 * window.redF(),
                            0.6 * fg.greenF() + 0.4 * window.greenF(),
                            0.6 * fg.blueF() + 0.4 * window.blueF())
    return {"window": _mpl(window), "fg": _mpl(fg), "muted": _mpl(muted),
            "base": _mpl(palette.color(QPalette.ColorRole.Base))}


def style_figure(figure: Any, palette: QPalette) -> None:
    """Colour `figure` from `palette`: backgrounds, spines, ticks and the default-coloured
    texts (titles, labels, tick labels, legends, notes)."""
    colour_figure(figure, figure_colours(palette))
