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


def sync_file(path: Path) -> None:
    """Flush `path` (a file, or every file under a folder) from the OS cache to the disk."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        with open(file, "rb") as stream:
            os.fsync(stream.fileno())


def sync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable (fsync the folder itself).

    Windows cannot open a folder for fsync; there NTFS's journal orders the rename after the
    data instead, and this is a no-op.
    """
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_replace(tmp: Path, target: Path) -> None:
    """Move a fully written `tmp` onto `target` so that a power cut leaves one or the other.

    The data is fsynced before the rename (else the rename may reach the disk first and
    leave an empty file) and the folder after it (else the rename itself may be lost).
    """
    sync_file(tmp)
    os.replace(tmp, target)
    sync_dir(target.parent)


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; move it into place only if the block succeeds.

    A crash, a full disk or a power cut never leaves a half-written `target` behind: the
    old file stays until the new one is on the disk (`durable_replace`).
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
        durable_replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: Path, text: str) -> None:
    """Write a text file atomically and durably (temporary file, fsync, rename)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def shown(path: str | Path) -> str:
    """A path as the app shows it: inside the app relative to its folder, under the home
    folder with `~`, else whole (the full path stays in tooltips and files)."""
    path = Path(path)
    for root, prefix in ((PROJECT_ROOT, ""), (Path.home(), "~/")):
        try:
            return prefix + path.resolve().relative_to(root.resolve()).as_posix()
        except (ValueError, OSError):
            continue
    return str(path)
