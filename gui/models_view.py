"""The Models view: the model library (bundled, trained runs, imported) and the active model."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QTextBlockFormat, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from core.classes import full_name
from core.export_model import SUFFIXES
from core.paths import shown
from gui.model_library import ModelEntry, ModelLibrary, list_models
from gui.settings import last_folder, remember_folder
from gui.theme import themed
from gui.widgets import message_label

EXPORT_FILTERS = {  # the save dialog's file-type choices, first the default, and their format
    "LiteRT for phones and edge devices (*.tflite)": "tflite",
    "ONNX for onnxruntime and other runtimes (*.onnx)": "onnx",
    "TensorFlow SavedModel (a folder)": "savedmodel",
}


def describe(entry: ModelEntry) -> str:
    """HTML with everything known about a model: classes, input, training data, metrics."""
    if entry.problem:
        return f"<h3>{entry.title}</h3><p style='color:#b00020'>{entry.problem}</p>"
    info = entry.info
    if info is None:
        return (f"<h3>{entry.title}</h3><p>{shown(entry.path)}</p><p>No stored description: "
                "it is treated as a HAM10000 model when its output has 7 classes.</p>")
    classes = "".join(f"<li>{c} — {full_name(c)}</li>" for c in info.classes)
    metrics = "".join(f"<tr><td>{k.replace('_', ' ')}</td><td>"
                      f"{'n/a' if v is None else f'{v:.3f}'}</td></tr>"
                      for k, v in info.metrics.items())
    trained = "<br>".join(f"{k}: {v}" for k, v in info.trained_on.items()) or "unknown"
    gate = ("<b>Out-of-distribution gate:</b> yes: images unlike its training images are "
            "refused" if info.domain else "<b>Out-of-distribution gate:</b> <span "
            "style='color:#a15c00'>none (an older file): it diagnoses anything</span>")
    recipe = (f"<b>Recipe:</b> {'flip TTA, ' if info.tta else ''}temperature "
              f"{info.temperature:.2f}{', class bias' if info.class_bias else ''}")
    return (f"<h3>{entry.title}</h3><p><code>{shown(entry.path)}</code></p>"
            f"<p><b>Architecture:</b> {info.architecture or 'unknown'}<br>"
            f"<b>Input:</b> {info.image_size}×{info.image_size} px RGB, crop policy "
            f"'{info.crop}'<br>{recipe}<br>{gate}</p><p><b>Classes:</b></p><ul>{classes}</ul>"
            f"<p><b>Training data:</b><br>{trained}</p>"
            f"<p><b>Test metrics:</b></p><table>{metrics or '<tr><td>none</td></tr>'}</table>")


def card_markdown(entry: ModelEntry) -> str:
    """The model card stored in the file (Markdown), under the model's name and input."""
    info = entry.info
    assert info is not None
    return (f"### {entry.title}\n\n`{shown(entry.path)}`\n\n**Input:** {info.image_size}×"
            f"{info.image_size} px RGB, crop policy '{info.crop}'\n\n{info.card}")


def wrap_code_blocks(document: QTextDocument) -> None:
    """Let the card's command blocks wrap: unwrapped, one long command made the card scroll
    sideways on a 1024 px screen."""
    wrapping = QTextBlockFormat()
    wrapping.setNonBreakableLines(False)
    block = document.begin()
    while block.isValid():
        if block.blockFormat().nonBreakableLines():
            cursor = QTextCursor(block)
            cursor.mergeBlockFormat(wrapping)
        block = block.next()


class ModelsView(QWidget):
    """List models, show their facts, choose the active one, import a `.keras` file."""

    active_changed = Signal(str)
    message = Signal(str)
    load_requested = Signal(object)  # a model file to load and make active
    import_requested = Signal(object)  # a model file to check and copy into the library
    export_requested = Signal(object, str, object)  # model file, format, target path

    def __init__(self, library: ModelLibrary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.entries: list[ModelEntry] = []
        self.list = QListWidget()
        self.list.currentRowChanged.connect(self._show_current)
        self.details = QTextBrowser()
        self.active_label = QLabel("Active model: none")
        self.active_label.setWordWrap(True)
        self.error_label = message_label()
        self.use_button = QPushButton("Use for Classify")
        self.use_button.clicked.connect(self.activate_current)
        import_button = QPushButton("Import .keras file…")
        import_button.clicked.connect(self.choose_import)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Write the selected model as a LiteRT (.tflite) file, an "
                                      "ONNX file or a TensorFlow SavedModel folder, with a "
                                      "sidecar JSON")
        self.export_button.clicked.connect(self.choose_export)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        buttons = QHBoxLayout()
        for button in (self.use_button, import_button, self.export_button, refresh):
            buttons.addWidget(button)
        splitter = QSplitter()
        splitter.addWidget(self.list)
        splitter.addWidget(self.details)
        splitter.setSizes([380, 700])
        layout = QVBoxLayout(self)
        layout.addWidget(self.active_label)
        layout.addWidget(self.error_label)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)
        self.refresh()

    @Slot()
    def refresh(self) -> None:
        """Re-read the model library."""
        current = self.current_entry()
        self.entries = list_models()
        self.list.clear()
        active = self.library.active_path()
        for entry in self.entries:
            mark = "★ " if entry.path == active else ""
            item = QListWidgetItem(mark + entry.title + (" (damaged)" if entry.problem else ""))
            item.setData(Qt.ItemDataRole.UserRole, str(entry.path))
            self.list.addItem(item)
        paths = [e.path for e in self.entries]
        if current is not None and current.path in paths:
            self.list.setCurrentRow(paths.index(current.path))
        elif self.entries:
            self.list.setCurrentRow(0)

    def current_entry(self) -> ModelEntry | None:
        """The selected library entry."""
        row = self.list.currentRow() if hasattr(self, "list") else -1
        return self.entries[row] if 0 <= row < len(self.entries) else None

    def _show_current(self) -> None:
        entry = self.current_entry()
        if entry is not None and entry.info is not None and entry.info.card:
            self.details.setMarkdown(card_markdown(entry))
            wrap_code_blocks(self.details.document())
        else:
            self.details.setHtml(themed(describe(entry)) if entry else "")

    @Slot()
    def activate_current(self) -> None:
        """Load the selected model in a worker and make it active."""
        entry = self.current_entry()
        if entry is not None:
            self.activate(entry.path)

    def activate(self, path: Path) -> None:
        """Load `path` in a worker and make it the active model."""
        self.error_label.setVisible(False)
        self.load_requested.emit(Path(path))

    def choose_import(self) -> None:
        """Ask for a `.keras` file, check it in safe mode, and add it to the library."""
        path, _ = QFileDialog.getOpenFileName(self, "Import model", last_folder("models"),
                                              "Keras model (*.keras)")
        if path:
            remember_folder("models", str(Path(path).parent))
            self.import_model(Path(path))

    def import_model(self, source: Path) -> None:
        """Validate and copy `source` into the library (in a worker)."""
        self.error_label.setVisible(False)
        self.import_requested.emit(Path(source))

    @Slot(object)
    def on_imported(self, path: str) -> None:
        """A requested import succeeded: list the model and make it active."""
        self.refresh()
        self.message.emit(f"Imported {Path(path).name}")
        self.activate(Path(path))

    @Slot(object)
    def on_activated(self, path: str) -> None:
        """A requested load succeeded: the model is now active."""
        self.set_active(Path(path))

    def set_active(self, path: Path) -> None:
        """Show `path` (already loaded and active) as the active model."""
        self.library.activate(path)
        entry = next((e for e in list_models() if e.path == path), None)
        title = entry.title if entry else f"{path.parent.name}/{path.name}"
        loaded = self.library.active()
        engine = f" (answers through {loaded.runtime})" if loaded else ""
        self.active_label.setText(f"Active model: <b>{title}</b> — {shown(path)}{engine}")
        self.active_label.setToolTip(str(path))
        self.refresh()
        self.active_changed.emit(title)
        self.message.emit(f"Active model: {title}")

    def choose_export(self) -> None:
        """Ask for a format and a target, then request the export of the selected model."""
        entry = self.current_entry()
        if entry is None or entry.problem:
            self.show_error("Select a usable model to export first.")
            return
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export model", str(Path(last_folder("export")) / f"{entry.path.stem}.tflite"),
            ";;".join(EXPORT_FILTERS))
        if not path:
            return
        remember_folder("export", str(Path(path).parent))
        fmt = EXPORT_FILTERS.get(chosen, "tflite")
        target = Path(path)
        wanted = SUFFIXES[fmt]
        if target.suffix in SUFFIXES.values() and target.suffix != wanted:
            target = target.with_suffix("")  # a name typed for another format
        if target.suffix != wanted:
            target = target.with_name(target.name + wanted)
        self.error_label.setVisible(False)
        self.export_button.setEnabled(False)
        self.export_button.setText("Exporting…")
        self.export_requested.emit(entry.path, fmt, target)

    @Slot(object)
    def on_exported(self, path: object) -> None:
        """A requested export finished."""
        self.export_button.setEnabled(True)
        self.export_button.setText("Export…")
        self.message.emit(f"Exported to {path} (with its sidecar JSON)")

    @Slot(str)
    def on_export_failed(self, message: str) -> None:
        """A requested export failed: say why."""
        self.export_button.setEnabled(True)
        self.export_button.setText("Export…")
        self.show_error(message)

    @Slot(str)
    def show_error(self, message: str) -> None:
        """Show why a model could not be loaded; the previous active model stays."""
        self.error_label.setText(message)
        self.error_label.setVisible(True)
        self.message.emit(message)
