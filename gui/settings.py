"""Persistent settings (window geometry, last folders) in an INI file in the data folder."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from core import paths


def app_settings() -> QSettings:
    """The app's QSettings, stored under the per-user data folder (SKIN_LESION_HOME aware)."""
    return QSettings(str(paths.data_dir() / "settings.ini"), QSettings.Format.IniFormat)


def last_folder(key: str) -> str:
    """The folder last used for `key` ('' when none)."""
    value = app_settings().value(f"folders/{key}", "")
    return str(value) if value else ""


def remember_folder(key: str, folder: str) -> None:
    """Remember `folder` as the last one used for `key`."""
    settings = app_settings()
    settings.setValue(f"folders/{key}", folder)
    settings.sync()


def ham10000_folder() -> str:
    """The HAM10000 folder last opened in the Dataset view ('' when none, or gone): the
    Classify view's similar cases show its images."""
    folder = last_folder("ham10000")
    return folder if folder and Path(folder).is_dir() else ""
