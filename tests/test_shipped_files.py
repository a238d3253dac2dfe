"""What ships in resources/ names no machine: no absolute path in any model file, sidecar
or similar-cases index."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MACHINE_PATH = re.compile(rb"(/tmp/|/work/|/home/[a-z]|/root/|/Users/|[A-Z]:\\\\)")


def test_no_shipped_file_names_an_absolute_path() -> None:
    found = []
    for path in sorted((ROOT / "resources").rglob("*")):
        if path.suffix == ".json":
            if MACHINE_PATH.search(path.read_bytes()):
                found.append(str(path.relative_to(ROOT)))
        elif path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                found += [f"{path.name}:{name}" for name in archive.namelist()
                          if name.endswith((".json", ".txt"))
                          and MACHINE_PATH.search(archive.read(name))]
        elif path.suffix == ".npz":  # the similar-cases index: image ids, never paths
            with np.load(path, allow_pickle=False) as arrays:
                found += [f"{path.name}:{name}" for name in arrays.files
                          if arrays[name].dtype.kind == "U" and any(
                              MACHINE_PATH.search(str(v).encode()) or "/" in str(v)
                              for v in np.ravel(arrays[name]))]
    assert found == []
