"""Checks of command-line paths made before any command runs (so before TensorFlow loads)."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.errors import DatasetError

# argument names (argparse `dest`) that name a dataset folder
FOLDER_ARGUMENTS = ("data", "data_dir")


def check_folders(args: argparse.Namespace) -> None:
    """Raise `DatasetError` (the message `load_dataset` gives) for a dataset folder that
    does not exist; arguments that were left out are not checked."""
    for name in FOLDER_ARGUMENTS:
        value = getattr(args, name, None)
        if value in (None, ""):
            continue
        root = Path(value).expanduser().resolve()
        if not root.is_dir():
            raise DatasetError(f"{root} is not a folder")
