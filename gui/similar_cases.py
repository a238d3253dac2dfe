"""The Classify view's "Similar training images" panel and the dialog that enlarges one.

The panel asks for the nearest training images of the shown image (`requested`); the main
window finds them in a worker (`gui.task_functions.similar_task`) and hands back plain data
(`SimilarResult`). With the dataset folder known the tiles are thumbnails, else cards with
the image id; each says the diagnosis and the cosine similarity, and a click enlarges it.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QIcon, QImageReader, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.classes import full_name
from core.similar import SimilarCase
from gui.image_grid import array_to_pixmap
from gui.task_functions import SimilarResult

ICON_PX = 64
ENLARGED_PX = 520
NO_FOLDER = ("Open the HAM10000 folder once in the Dataset view to see these images; "
             "the index holds their ids and diagnoses only.")
HINT = ("Nearest in the model's feature space (cosine similarity, 1 = identical): "
        "what the model finds alike, not a diagnosis. Click one to enlarge it.")


def tile_text(case: SimilarCase, with_id: bool) -> str:
    """A tile's caption: diagnosis and similarity (and the image id on a card)."""
    text = f"{case.dx} · {case.similarity:.2f}"
    return f"{case.image_id}\n{text}" if with_id else text


class CaseDialog(QDialog):
    """One similar training image, enlarged, with its id, diagnosis and similarity."""

    def __init__(self, case: SimilarCase, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Training image {case.image_id}")
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        if case.path:
            reader = QImageReader(case.path)
            reader.setAutoTransform(True)
            image = reader.read()
            if not image.isNull():
                self.image.setPixmap(QPixmap.fromImage(image).scaled(
                    ENLARGED_PX, ENLARGED_PX, Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation))
        if self.image.pixmap().isNull():
            self.image.setText(NO_FOLDER if not case.path else f"Cannot read {case.path}")
            self.image.setWordWrap(True)
        self.caption = QLabel(f"{case.image_id} — {full_name(case.dx)} ({case.dx}), "
                              f"similarity {case.similarity:.2f} to the classified image; "
                              "a training image of the active model")
        self.caption.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.image, 1)
        layout.addWidget(self.caption)
        layout.addWidget(buttons)


class SimilarCasesPanel(QWidget):
    """Up to six training images nearest to the classified one; hidden for refused ones."""

    requested = Signal(str)  # the image file whose similar cases are wanted

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = ""
        self.cases: list[SimilarCase] = []
        self.tiles: list[QToolButton] = []
        self.title = QLabel("Similar training images")
        self.title.setStyleSheet("font-weight: bold;")
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #555;")
        self.row = QHBoxLayout()
        self.row.setContentsMargins(0, 0, 0, 0)
        self.row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addLayout(self.row)
        layout.addWidget(self.note)
        self.hide()

    def request(self, path: str) -> None:
        """Show the panel for `path` and ask for its similar cases (once per image)."""
        self.show()
        if path == self.path:
            return
        self.path = path
        self._clear()
        self.note.setText("Finding the most similar training images…")
        self.requested.emit(path)

    def reset(self) -> None:
        """Forget the shown image (new results, or another model): the next request asks."""
        self.path = ""

    def hide_panel(self) -> None:
        """Hide the panel (a refused image gets no diagnosis-like hints)."""
        self.path = ""
        self._clear()
        self.hide()

    def _clear(self) -> None:
        for tile in self.tiles:
            self.row.removeWidget(tile)
            tile.deleteLater()
        self.tiles, self.cases = [], []

    @Slot(int, int)
    def set_progress(self, done: int, total: int) -> None:
        """Progress of indexing a run's training images (the first request only)."""
        self.note.setText(f"Indexing this model's training images (once): {done}/{total}")

    @Slot(str)
    def show_note(self, text: str) -> None:
        self.note.setText(text)

    @Slot(str)
    def show_error(self, message: str) -> None:
        """Say why there are no similar cases (no index, a stale one, …)."""
        self._clear()
        self.note.setText(f"No similar training images: {message}")

    @Slot(object)
    def show_cases(self, result: SimilarResult) -> None:
        """Fill the tiles (ignored when another image is shown by now)."""
        if result.path != self.path or not self.isVisible():
            return
        self._clear()
        self.cases = list(result.cases)
        for n, case in enumerate(self.cases):
            thumb = result.thumbnails[n] if n < len(result.thumbnails) else None
            tile = QToolButton()
            tile.setText(tile_text(case, with_id=thumb is None))
            tile.setToolTip(f"{case.image_id}: {full_name(case.dx)}, similarity "
                            f"{case.similarity:.3f}. Click to enlarge.")
            if thumb is not None:
                tile.setIcon(QIcon(array_to_pixmap(thumb)))
                tile.setIconSize(QSize(ICON_PX, ICON_PX))
                tile.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            else:
                tile.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
                tile.setMinimumHeight(ICON_PX // 2)
            tile.clicked.connect(lambda _=False, c=case: self.enlarge(c))
            self.row.insertWidget(n, tile)
            self.tiles.append(tile)
        found = "" if self.cases else "The model's index has no training images. "
        self.note.setText(found + (HINT if result.folder_known else f"{HINT} {NO_FOLDER}"))

    def enlarge(self, case: SimilarCase) -> CaseDialog:
        """Show one case in a dialog (returned, so tests can look at it)."""
        dialog = CaseDialog(case, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def item_texts(self) -> list[str]:
        """The tiles' captions, in order."""
        return [tile.text() for tile in self.tiles]
