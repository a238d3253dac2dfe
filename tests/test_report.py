"""The run report: a typeset PDF summary page, no near-empty page, only the settings that
matter for the run's model (shared by the HTML and the PDF)."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.classes import HAM10000_CLASSES
from core.config import TrainConfig
from core.metrics import compute_metrics, grouped_ci, predictions_table
from core.report import ReportData, render_html, settings_rows
from core.report_pdf import pdf_pages, render_pdf
from core.subgroups import subgroup_metrics

CLASSES = list(HAM10000_CLASSES)


def run_data(model: str, **settings: Any) -> ReportData:
    """A finished run's report data, as `run_report_data` reads it, without training."""
    rng = np.random.default_rng(0)
    n = 160
    y = np.arange(n) // 2 % len(CLASSES)
    proba = rng.uniform(0.0, 0.1, (n, len(CLASSES)))
    proba[np.arange(n), np.where(rng.random(n) < 0.6, y, rng.integers(0, 7, n))] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    lesions = np.array([f"L{i // 2}" for i in range(n)])
    ids = [f"ISIC_{i:07d}" for i in range(n)]
    metrics = compute_metrics(y, proba, CLASSES)
    records = pd.DataFrame({"sex": rng.choice(["female", "male"], n),
                            "age": rng.choice(np.arange(20, 85, 5.0), n),
                            "localization": rng.choice(["back", "face", "trunk"], n)})
    metrics.update(subgroup_metrics(y, proba, CLASSES, lesions, records, n_boot=50))
    ci, unit = grouped_ci(y, proba.argmax(axis=1), np.array(ids), lesions)
    metrics.update(balanced_accuracy_ci95=ci, ci_unit=unit, out_of_domain=3, split="lesion",
                   evaluated_on="test", leaky=False, best_epoch=3, epochs_completed=4)
    config = asdict(TrainConfig(data_dir="ham", model=model, epochs=4, **settings).resolve())
    history = pd.DataFrame({"epoch": [1, 2, 3, 4], "loss": [1.2, 0.9, 0.8, 0.75],
                            "val_loss": [1.1, 1.0, 0.95, 0.97],
                            "accuracy": [0.5, 0.6, 0.65, 0.7],
                            "val_accuracy": [0.45, 0.55, 0.6, 0.58]})
    table = predictions_table(ids, [f"/d/{i}.jpg" for i in ids], y, proba, CLASSES)
    card = ("A model trained by this app.\n\n## Evaluation\n\n| part | value |\n|---|---|\n"
            "| test | **0.61** |\n\n- Architecture: " + model)
    return ReportData("Training run r1", metrics, config, history, table, card,
                      date="trained 2026-12-02 05:14")


def page_text(page: Any) -> str:
    """Every string drawn on a page (its Text artists, in drawing order)."""
    from matplotlib.text import Text

    return "\n".join(t.get_text() for t in page.findobj(Text) if t.get_text())


def filled(page: Any) -> float:
    """How far down the page its content reaches (0: empty, 1: to the bottom edge),
    footer left out."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    renderer = FigureCanvasAgg(page).get_renderer()
    lows = [t.get_window_extent(renderer).y0 for t in page.axes[0].findobj(Text)
            if t.get_text()]
    lows += [ax.get_window_extent(renderer).y0 for ax in page.axes[1:]]
    return 1 - min(lows) / page.bbox.height


@pytest.fixture(scope="module")
def cnn_pages() -> list[Any]:
    return pdf_pages(run_data("cnn"))


def test_page_one_is_a_typeset_summary_with_the_ci_and_no_transfer_settings(
        cnn_pages: list[Any]) -> None:
    from matplotlib.text import Text

    data = run_data("cnn")
    text = page_text(cnn_pages[0])
    low, high = data.metrics["balanced_accuracy_ci95"]
    assert text.startswith("CNN (study)")
    assert "Training run r1 · trained 2026-12-02 05:14" in text
    assert "Research software, not a medical device" in text
    assert f"{data.metrics['balanced_accuracy']:.3f}" in text
    assert f"{low:.3f} – {high:.3f}" in text and "bootstrap over lesions" in text
    assert "Melanoma recall" in text and "Macro AUC (one vs. rest)" in text
    assert "Majority baseline" in text and "Expected calibration error" in text
    assert "Measured on the held-out test part" in text and "160 images of 80 lesions" in text
    assert "4 of 4 run; best epoch 3 kept (lowest validation loss)" in text
    assert "weights" not in text.lower()  # the study's CNN has no ImageNet weights
    assert "fine-tune" not in text.lower() and "Backbone" not in text
    assert "Label smoothing" not in text  # off: not listed
    families = {f for t in cnn_pages[0].findobj(Text) for f in t.get_fontfamily()}
    assert "monospace" not in families


def test_page_one_of_a_transfer_model_lists_its_imagenet_weights() -> None:
    text = page_text(pdf_pages(run_data("vgg16"))[0])
    assert text.startswith("VGG16, frozen (study)")
    assert "ImageNet weights" in text and "ImageNet (pretrained)" in text
    assert "frozen (head trained on cached features)" in text


def test_the_pdf_has_four_pages_none_almost_empty(cnn_pages: list[Any],
                                                  tmp_path: Path) -> None:
    assert len(cnn_pages) <= 4
    fills = [filled(page) for page in cnn_pages]
    assert all(f >= 0.45 for f in fills), fills
    texts = [page_text(page) for page in cnn_pages]
    assert "Training curves" in texts[0]  # the curves share page 1 with the summary
    assert any("Per-class report" in t and "Confusion matrix" in t for t in texts)
    assert "Subgroups" in texts[-1] and "Model card" in texts[-1]
    assert "page 1 of 4" in texts[0] or len(cnn_pages) < 4
    target = tmp_path / "report.pdf"
    render_pdf(run_data("cnn"), target)
    data = target.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page(?!s)", data)) == len(cnn_pages)


def test_the_model_card_markdown_is_typeset(cnn_pages: list[Any]) -> None:
    text = page_text(cnn_pages[-1])
    assert "Evaluation" in text and "0.61" in text and "**" not in text
    assert "|" not in text and "• Architecture: cnn" in text


def test_settings_rows_list_only_what_applies_to_the_model() -> None:
    cnn = dict(settings_rows(run_data("cnn", balance="class-weights",
                                      label_smoothing=0.1).config,
                             {"epochs_completed": 4, "best_epoch": 2}))
    assert cnn["Balancing"] == "class weights in the loss"
    assert cnn["Label smoothing"] == "0.1"
    assert cnn["Image size"] == "32×32 px (whole frame resized)"
    assert "ImageNet weights" not in cnn and "Backbone" not in cnn
    lite0 = dict(settings_rows(run_data("efficientnet-lite0", fine_tune=20).config))
    assert lite0["ImageNet weights"] == "ImageNet (pretrained)"
    assert lite0["Backbone"] == "last 20 layers fine-tuned"
    evaluation = settings_rows({"model": "/m/default.keras", "data": "/d", "tta": None})
    assert evaluation == [("model", "/m/default.keras"), ("data", "/d")]


def test_the_html_report_uses_the_same_settings_rule() -> None:
    cnn, vgg = render_html(run_data("cnn")), render_html(run_data("vgg16"))
    assert "<td>ImageNet weights</td>" not in cnn and "<td>weights</td>" not in cnn
    assert "<td>ImageNet weights</td>" in vgg
    assert "<td>Epochs</td><td>4 of 4 run; best epoch 3 kept" in cnn
