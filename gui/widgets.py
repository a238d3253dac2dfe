"""Small widgets the views share: inline error and warning labels, and an empty state."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QStackedWidget, QWidget

ERROR_STYLE = ("color: #a40000; background: #fde8e8; border: 1px solid #e0a0a0; "
               "padding: 6px; border-radius: 3px;")
WARNING_STYLE = ("color: #6b4a00; background: #fff4d6; border: 1px solid #e0c070; "
                 "padding: 6px; border-radius: 3px;")


def message_label(style: str = ERROR_STYLE) -> QLabel:
    """A hidden, word-wrapped, selectable label for inline errors (or warnings)."""
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet(style)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setVisible(False)
    return label


def with_empty_state(text: str, content: QWidget) -> QStackedWidget:
    """A stack showing `text` (page 0) until the caller switches to `content` (page 1)."""
    empty = QLabel(text)
    empty.setWordWrap(True)
    empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
    stack = QStackedWidget()
    stack.addWidget(empty)
    stack.addWidget(content)
    return stack
