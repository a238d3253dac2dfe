"""Where the app keeps its runs (per-user data) and decoded-image cache (per-user cache).

`SKIN_LESION_HOME` overrides both (tests and portable installs use it).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

APP_NAME = "skin-lesion-classifier"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESOURCES_DIR = PROJECT_ROOT / "resources"
BUNDLED_MODEL = RESOURCES_DIR / "models" / "default.keras"


def _home_override() -> Path | None:
    value = os.environ.get("SKIN_LESION_HOME")
    return Path(value) if value else None


def data_dir() -> Path:
    """Per-user data folder (runs, imported models)."""
    home = _home_override()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Per-user cache folder (decoded images)."""
    home = _home_override()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def runs_dir() -> Path:
    """Folder holding one sub-folder per training run."""
    return data_dir() / "runs"


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; move it into place only if the block succeeds.

    A crash or full disk never leaves a half-written `target` behind.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    # Keep every suffix: Keras insists on names ending in ".weights.h5" or ".keras".
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix="".join(target.suffixes),
                                    dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: Path, text: str) -> None:
    """Write a text file atomically (temporary file, then rename)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
