"""The loaded models, shared between the GUI thread and workers (Keras objects stay here).

A model answers through its LiteRT twin when it has a current one (`core.twin`), so the
bundled model classifies a moment after the window paints, without TensorFlow; the Keras
model itself is loaded only for what needs it (Grad-CAM).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core import paths
from core.model_io import Classifier, LoadedModel, ModelInfo, load_model, read_info, warm_up
from core.runs import RunFolder, list_runs


@dataclass
class ModelEntry:
    """One model the user can choose: where it is and what it is (plain data)."""

    path: Path
    title: str
    source: str  # "bundled", "run" or "imported"
    info: ModelInfo | None = None
    problem: str = ""


def imported_dir() -> Path:
    """Folder where imported `.keras` files are copied."""
    return paths.data_dir() / "models"


def list_models() -> list[ModelEntry]:
    """The bundled model, every run's model and every imported model."""
    entries: list[ModelEntry] = []
    if paths.BUNDLED_MODEL.is_file():
        entries.append(ModelEntry(paths.BUNDLED_MODEL, "Default model (bundled)", "bundled"))
    for run in list_runs():
        model = RunFolder(run.path).model_path
        if not run.damaged:
            entries.append(ModelEntry(model, f"Run {run.name}", "run"))
    folder = imported_dir()
    if folder.is_dir():
        entries += [ModelEntry(p, f"Imported {p.stem}", "imported")
                    for p in sorted(folder.glob("*.keras"))]
    for entry in entries:
        try:
            entry.info = read_info(entry.path)
        except Exception as exc:  # a damaged file is listed as such, never breaks the list
            entry.problem = str(exc)
    return entries


class ModelLibrary:
    """Holds loaded models by path and which one is active; safe to use from workers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[Path, Classifier] = {}
        self._keras: dict[Path, LoadedModel] = {}
        self._active: Path | None = None

    def load(self, path: Path, runtime: str = "auto",
             status: Callable[[str], None] | None = None) -> ModelInfo:
        """Load (in a worker) and remember a model; raises `ModelError` for bad files.

        `runtime` as in `core.twin.open_model`: "auto" takes the LiteRT twin when it is
        current, else loads Keras and rebuilds the twin.
        """
        from core.twin import open_model

        model = open_model(path, runtime, status)
        warm_up(model)  # the first dropped image then takes milliseconds, not a second
        with self._lock:
            self._loaded[Path(path)] = model
            if isinstance(model, LoadedModel):
                self._keras[Path(path)] = model
        return model.info

    def keras_model(self, path: Path) -> LoadedModel:
        """The Keras model of `path` (Grad-CAM needs it), loaded on first use (in a worker)."""
        with self._lock:
            model = self._keras.get(Path(path))
        if model is None:
            model = load_model(path)
            with self._lock:
                self._keras[Path(path)] = model
        return model

    def activate(self, path: Path) -> None:
        """Make a loaded model the one Classify and Evaluate use."""
        with self._lock:
            if Path(path) not in self._loaded:
                raise KeyError(path)
            self._active = Path(path)

    def active(self) -> Classifier | None:
        """The active model, or None when there is none yet."""
        with self._lock:
            return self._loaded.get(self._active) if self._active else None

    def active_path(self) -> Path | None:
        """Path of the active model."""
        return self._active

    def import_file(self, source: Path) -> Path:
        """Validate a `.keras` file in safe mode, then copy it into the library."""
        load_model(source)  # refuses unsafe, damaged or foreign files before copying
        target = imported_dir() / source.name
        n = 1
        while target.exists():
            n += 1
            target = imported_dir() / f"{source.stem}-{n}.keras"
        with paths.atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
        self.load(target)
        return target
