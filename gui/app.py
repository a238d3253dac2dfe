"""Start the desktop app: the window shows first, TensorFlow loads in the background."""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from core import paths

STARTUP_DELAY_MS = 250


def _no_display() -> bool:
    """True on Linux when no display is reachable and no platform was chosen (Qt would abort)."""
    return (sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"))


def run_app(argv: list[str] | None = None) -> int:
    """Create the application and main window, and run the event loop."""
    if _no_display():
        print("error: no display found (DISPLAY is not set). Run the app on a desktop, or use "
              "the command line: python main.py --help", file=sys.stderr)
        return 1
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("Skin Lesion Classifier")
    app.setOrganizationName("skin-lesion-classifier")
    icon = paths.RESOURCES_DIR / "icons" / "app.png"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    from gui.curve_painter import curve_painter
    from gui.gui_gc import GuiThreadCollector
    from gui.main_window import MainWindow

    collector = GuiThreadCollector(app)  # noqa: F841  (lives as long as the app)
    app.aboutToQuit.connect(curve_painter().close)
    window = MainWindow()
    window.show()
    # Importing TensorFlow holds the GIL for seconds: start it once the window has painted.
    QTimer.singleShot(STARTUP_DELAY_MS, window.start_background_loading)
    return app.exec()
