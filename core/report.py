"""A run's report: one self-contained HTML file (images inline) and, optionally, a PDF.

The report shows the dataset, split and config, the curves, the headline metrics with their
confidence intervals beside the majority baseline, the confusion matrix, the per-class
table, ROC curves, the reliability diagram, the out-of-domain count, the model card and the
not-a-medical-device notice. Figures are drawn with matplotlib's Agg backend (no Qt), the
PDF with matplotlib's PdfPages: no dependency beyond those the app has.
"""

from __future__ import annotations

import base64
import html
import io
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import paths
from core.classes import full_name
from core.errors import SkinLesionError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

NOTICE = ("Research software, not a medical device. These results must not be used for "
          "diagnosis or to decide on treatment.")
PER_CLASS_KEYS = ("precision", "recall", "specificity", "f1", "auc", "support")


@dataclass
class ReportData:
    """Everything a report shows, as plain data (a run, or an evaluation on a folder)."""

    title: str
    metrics: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    history: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None
    card: str = ""


def run_report_data(run_dir: Path) -> ReportData:
    """Read a run folder into `ReportData` (the model card from its model file, if any)."""
    from core.model_io import read_info
    from core.runs import RunFolder, read_run

    run = read_run(Path(run_dir))
    info = read_info(RunFolder(run_dir).model_path)
    card = (info.card or basic_card(info)) if info else ""
    return ReportData(f"Training run {run.summary.name}", run.metrics, run.config,
                      run.history if not run.history.empty else None, run.predictions, card)


def basic_card(info: Any) -> str:
    """A short card for a model file that carries none (a training run's model)."""
    trained = "\n".join(f"- {k}: {v}" for k, v in info.trained_on.items())
    gate = "yes: images unlike the training images are refused" if info.domain else "none"
    return (f"A model trained by this app; it has no hand-written model card.\n\n"
            f"- Architecture: {info.architecture or 'unknown'}\n"
            f"- Input: {info.image_size}x{info.image_size} px RGB, crop policy '{info.crop}'\n"
            f"- Classes: {', '.join(info.classes)}\n"
            f"- Recipe: {'4-flip TTA, ' if info.tta else ''}temperature {info.temperature:.3f}\n"
            f"- Out-of-distribution gate: {gate}\n\nTrained on:\n{trained}\n\n"
            "Research software, not a medical device: not for diagnosis.")


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def headline_rows(m: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, value) rows of the headline metrics, with CIs, baseline and trust figures."""
    ci = m.get("balanced_accuracy_ci95")
    unit = m.get("ci_unit", "image")
    balanced = _fmt(m.get("balanced_accuracy"))
    if ci:
        balanced += f" (95% CI {ci[0]:.3f}–{ci[1]:.3f}, bootstrap over {unit}s)"
    rows = [("Balanced accuracy (ISIC 2018 metric)", balanced),
            ("Accuracy", _fmt(m.get("accuracy"))),
            ("Majority baseline", f"always {m.get('majority_class', '?')}: "
                                  f"{_fmt(m.get('majority_baseline_accuracy'))}"),
            ("Macro AUC (one-vs-rest)", _fmt(m.get("macro_auc"))),
            ("Melanoma recall", _fmt(m.get("melanoma_recall"))),
            ("Expected calibration error (15 bins)", _fmt(m.get("ece"))),
            ("Images evaluated", _fmt(m.get("n_images")))]
    if m.get("out_of_domain") is not None:
        rows.append(("Refused by the out-of-distribution gate",
                     f"{m['out_of_domain']} of {m.get('n_images', '?')} images "
                     "(still included in the metrics)"))
    else:
        rows.append(("Refused by the out-of-distribution gate", "the model has no gate"))
    if m.get("seen_in_training"):
        rows.append(("Warning", f"{m['seen_in_training']} of these images were used to train "
                                "this model; its scores here are inflated"))
    if m.get("leaky"):
        rows.append(("Warning", "seed-leaky split: copies of an image sit in training and "
                                "validation, so these scores are inflated"))
    return rows


def per_class_rows(m: dict[str, Any]) -> list[list[str]]:
    """One row per class: code, full name, precision … support."""
    return [[code, full_name(code), *(_fmt(scores.get(k)) for k in PER_CLASS_KEYS)]
            for code, scores in m.get("per_class", {}).items()]


def _figures(data: ReportData) -> dict[str, Figure]:
    """The report's figures by name (curves, confusion, roc, reliability), off screen."""
    from matplotlib.figure import Figure

    from core.calibration import reliability
    from core.metrics import roc_curves, table_arrays
    from core.plots import draw_confusion, draw_curves, draw_reliability, draw_roc

    m, figures = data.metrics, {}
    if data.history is not None and not data.history.empty:
        fig = Figure(figsize=(8, 3), layout="constrained")
        loss_ax, acc_ax = fig.subplots(1, 2)
        draw_curves(loss_ax, acc_ax, data.history)
        figures["Training curves"] = fig
    classes = list(m.get("classes", []))
    if m.get("confusion_matrix"):
        fig = Figure(figsize=(5, 4.2), layout="constrained")
        draw_confusion(fig.subplots(), m["confusion_matrix"], classes)
        figures["Confusion matrix (rows: true class)"] = fig
    if data.predictions is not None and not data.predictions.empty and classes:
        y_true, proba = table_arrays(data.predictions, classes)
        fig = Figure(figsize=(5, 4.2), layout="constrained")
        draw_roc(fig.subplots(), roc_curves(y_true, proba, classes), m.get("per_class", {}))
        figures["ROC curves (one class vs. the rest)"] = fig
        fig = Figure(figsize=(5, 4.2), layout="constrained")
        draw_reliability(fig.subplots(), reliability(y_true, proba))
        figures["Reliability diagram"] = fig
    return figures


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _table(rows: list[list[str]] | list[tuple[str, str]], head: list[str] | None = None) -> str:
    esc = html.escape
    header = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>" if head else ""
    body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table>{header}{body}</table>"


def config_rows(config: dict[str, Any]) -> list[tuple[str, str]]:
    """The dataset, split and configuration as (setting, value) rows."""
    return [(k.replace("_", " "), _fmt(v)) for k, v in config.items()]


def render_html(data: ReportData) -> str:
    """The whole report as one HTML document with its figures inline (base64 PNG)."""
    esc = html.escape
    parts = [f"<h1>{esc(data.title)}</h1>",
             f"<p class='notice'>⚕ {esc(NOTICE)}</p>",
             "<h2>Dataset, split and configuration</h2>",
             _table(config_rows(data.config)) if data.config else "<p>Not recorded.</p>",
             "<h2>Headline metrics</h2>", _table(headline_rows(data.metrics))]
    figures = _figures(data)
    for name, fig in figures.items():
        parts.append(f"<h2>{esc(name)}</h2><img alt='{esc(name)}' "
                     f"src='data:image/png;base64,{_png(fig)}'>")
        if name.startswith("Confusion"):
            parts += ["<h2>Per-class report</h2>",
                      _table(per_class_rows(data.metrics),
                             ["class", "full name", *PER_CLASS_KEYS])]
    if not any(n.startswith("Confusion") for n in figures):
        parts += ["<h2>Per-class report</h2>",
                  _table(per_class_rows(data.metrics), ["class", "full name", *PER_CLASS_KEYS])]
    parts += ["<h2>Model card</h2>",
              f"<pre class='card'>{esc(data.card)}</pre>" if data.card
              else "<p>This model file carries no model card.</p>",
              f"<p class='notice'>⚕ {esc(NOTICE)}</p>"]
    style = ("body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;"
             "padding:3px 8px;text-align:left}img{max-width:100%}"
             ".notice{background:#fff4d6;padding:8px;font-weight:bold}"
             ".card{white-space:pre-wrap;background:#f6f6f6;padding:8px;font-size:90%}")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{esc(data.title)}</title><style>{style}</style></head>"
            f"<body>{''.join(parts)}</body></html>")


def _text_page(pdf: Any, title: str, lines: list[str], size: tuple[float, float]) -> None:
    """Write `lines` on as many A4 pages as they need."""
    from matplotlib.figure import Figure

    per_page = 62
    for start in range(0, max(len(lines), 1), per_page):
        fig = Figure(figsize=size)
        fig.text(0.07, 0.96, title + (" (continued)" if start else ""), fontsize=13,
                 weight="bold", va="top")
        fig.text(0.07, 0.92, "\n".join(lines[start:start + per_page]), fontsize=7.5,
                 va="top", family="monospace")
        pdf.savefig(fig)


def render_pdf(data: ReportData, target: Path) -> None:
    """The same report as a PDF (A4 pages: text, then the figures, then the model card)."""
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    a4 = (8.27, 11.69)
    wrap = textwrap.TextWrapper(width=110, subsequent_indent="    ")
    summary = [NOTICE, "", "DATASET, SPLIT AND CONFIGURATION"]
    summary += [f"  {k}: {v}" for k, v in config_rows(data.config)] or ["  not recorded"]
    summary += ["", "HEADLINE METRICS"]
    summary += [line for k, v in headline_rows(data.metrics) for line in wrap.wrap(f"  {k}: {v}")]
    summary += ["", "PER-CLASS REPORT", "  " + "  ".join(f"{h:>11}" for h in
                                                           ("class", *PER_CLASS_KEYS))]
    summary += ["  " + "  ".join(f"{c:>11}" for c in [r[0], *r[2:]])
                for r in per_class_rows(data.metrics)]
    card = [line for raw in (data.card or "This model file carries no model card.").splitlines()
            for line in (wrap.wrap(raw) or [""])]
    with paths.atomic_path(target) as tmp, PdfPages(tmp) as pdf:
        _text_page(pdf, data.title, summary, a4)
        figures = list(_figures(data).items())
        for start in range(0, len(figures), 2):
            page = Figure(figsize=a4)
            for slot, (name, fig) in enumerate(figures[start:start + 2]):
                buffer = io.BytesIO()
                fig.savefig(buffer, format="png", dpi=130)
                buffer.seek(0)
                import matplotlib.image as mpimg

                ax = page.add_axes((0.06, 0.52 - slot * 0.47, 0.88, 0.42))
                ax.imshow(mpimg.imread(buffer))
                ax.set_axis_off()
                ax.set_title(name, fontsize=11)
            pdf.savefig(page)
        _text_page(pdf, "Model card", card, a4)


def export_report(data: ReportData, target: Path) -> Path:
    """Write `data` as a PDF when `target` ends in .pdf, else as HTML."""
    target = Path(target)
    if target.suffix.lower() == ".pdf":
        render_pdf(data, target)
    else:
        paths.write_text_atomic(target, render_html(data))
    return target


def write_report(run_dir: Path, html: Path | None = None, pdf: Path | None = None) -> list[Path]:
    """Write the report of `run_dir` as HTML (default RUN_DIR/report.html) and, with `pdf`,
    as a PDF."""
    from core.runs import RunFolder

    if not RunFolder(run_dir).file(RunFolder.METRICS).is_file():
        raise SkinLesionError(f"{run_dir} is not a finished training run (no metrics.json)")
    data = run_report_data(Path(run_dir))
    written = [export_report(data, Path(html) if html else
                             RunFolder(run_dir).file(RunFolder.REPORT))]
    if pdf:
        written.append(export_report(data, Path(pdf).with_suffix(".pdf")))
    return written
