"""Layering rules: core/ never imports Qt, and importing core does not load TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE_MODULES = sorted(p.stem for p in (ROOT / "core").glob("*.py") if p.stem != "__init__")


def test_core_imports_no_qt_even_when_used() -> None:
    code = (
        "import sys\n"
        + "".join(f"import core.{m}\n" for m in CORE_MODULES)
        + "from core.backend import keras; keras()\n"
        + "bad = [m for m in sys.modules if m.split('.')[0] in "
          "('PySide6', 'PyQt5', 'PyQt6', 'shiboken6', 'gui')]\n"
        + "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_core_sources_never_mention_qt() -> None:
    for path in (ROOT / "core").glob("*.py"):
        text = path.read_text()
        assert "PySide6" not in text and "PyQt" not in text, path


def test_importing_core_does_not_import_tensorflow() -> None:
    code = ("import sys\n" + "".join(f"import core.{m}\n" for m in CORE_MODULES)
            + "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.stdout.strip() == "False False", out.stderr


def test_opening_the_window_does_not_import_scikit_learn() -> None:
    code = ("import sys\nfrom PySide6.QtWidgets import QApplication\napp = QApplication([])\n"
            "import gui.main_window\nprint('sklearn' in sys.modules)\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, env=env)
    assert out.stdout.strip() == "False", out.stderr


def test_showing_the_window_imports_no_pandas_matplotlib_or_tensorflow(tmp_path: Path) -> None:
    # Each takes about half a second or more to import; start-up must stay under 1.5 s.
    code = ("import sys\nfrom PySide6.QtWidgets import QApplication\napp = QApplication([])\n"
            "from gui.main_window import MainWindow\n"
            "window = MainWindow(); window.show(); app.processEvents()\n"
            "print(sorted(m for m in ('pandas', 'matplotlib', 'tensorflow') "
            "if m in sys.modules))\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SKIN_LESION_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr
