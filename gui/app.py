"""Start the desktop app: the window shows first, TensorFlow loads in the background."""

from __future__ import annotations

import sys

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from core import paths

STARTUP_DELAY_MS = 250


def run_app(argv: list[str] | None = None) -> int:
    """Create the application and main window, and run the event loop."""
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("Skin Lesion Classifier")
    app.setOrganizationName("skin-lesion-classifier")
    icon = paths.RESOURCES_DIR / "icons" / "app.png"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    from gui.main_window import MainWindow

    window = MainWindow()
    window.show()
    # Importing TensorFlow holds the GIL for seconds: start it once the window has painted.
    QTimer.singleShot(STARTUP_DELAY_MS, window.start_background_loading)
    return app.exec()
