"""The About box: what the app is, the research-only notice, and the HAM10000 attribution."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from core import __version__

DISCLAIMER = "Research tool — not a medical device. Do not use its output for diagnosis."

ABOUT_HTML = f"""
<h3>Skin Lesion Classifier {__version__}</h3>
<p>A workbench to train, evaluate and run Keras models that classify dermoscopic images into
the seven HAM10000 classes, with honest evaluation: splits grouped by lesion, balancing on the
training part only, and balanced accuracy, melanoma recall and macro AUC beside accuracy.</p>
<p><b>{DISCLAIMER}</b></p>
<p>Dataset: HAM10000 — Tschandl P., Rosendahl C., Kittler H. <i>The HAM10000 dataset, a large
collection of multi-source dermatoscopic images of common pigmented skin lesions.</i>
Sci. Data 5, 180161 (2018), doi:10.1038/sdata.2018.161.
Licensed under CC BY-NC 4.0 (non-commercial use, with attribution).</p>
"""


def show_about(parent: QWidget) -> None:
    """Show the About box."""
    QMessageBox.about(parent, "About Skin Lesion Classifier", ABOUT_HTML)
