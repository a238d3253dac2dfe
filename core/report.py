"""A run's report: one self-contained HTML file (images inline) and, optionally, a PDF.

The report shows the dataset, split and config, the curves, the headline metrics with their
confidence intervals beside the majority baseline, the confusion matrix, the per-class
table, ROC curves, the reliability diagram, the out-of-domain count, the model card and the
not-a-medical-device notice. Figures are drawn with matplotlib's Agg backend (no Qt); the
PDF's layout lives in `core.report_pdf` (matplotlib's PdfPages: no dependency beyond those the
app has). Both list only the settings that matter for the run's model (`settings_rows`).
"""

from __future__ import annotations

import base64
import html
import io
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
    date: str = ""  # when the run finished ("" for an evaluation: the report's date is shown)
    lesions: int | None = None  # lesions in the evaluated part, when the metrics lack it


def run_report_data(run_dir: Path) -> ReportData:
    """Read a run folder into `ReportData` (the model card from its model file, if any)."""
    from core.model_io import read_info
    from core.runs import RunFolder, read_run

    run = read_run(Path(run_dir))
    info = read_info(RunFolder(run_dir).model_path)
    card = (info.card or basic_card(info)) if info else ""
    created = run.summary.created
    return ReportData(f"Training run {run.summary.name}", run.metrics, run.config,
                      run.history if not run.history.empty else None, run.predictions, card,
                      date=f"trained {created:%Y-%m-%d %H:%M}" if created else "",
                      lesions=_part_lesions(Path(run_dir), run.metrics.get("evaluated_on")))


def _part_lesions(run_dir: Path, part: Any) -> int | None:
    """How many lesions the evaluated part of a run's split.csv holds (None if unknown)."""
    import pandas as pd

    try:
        split = pd.read_csv(run_dir / "split.csv", dtype=str)
        return int(split.loc[split["subset"] == part, "lesion_id"].nunique()) or None
    except (OSError, KeyError, ValueError):
        return None


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


def settings_rows(config: dict[str, Any], metrics: dict[str, Any] | None = None
                  ) -> list[tuple[str, str]]:
    """The settings that matter for the run's model, as (setting, value) rows.

    For a training run's config only what shaped that model is listed (ImageNet weights and
    the backbone only for transfer models, by `core.config.applies`; label smoothing, early
    stopping, class weights and the like only when on), with the epochs run and the epoch
    kept from `metrics`. Any other config (an evaluation's) is listed as it is, empty
    values left out.
    """
    from core.config import DERIVED, TRANSFER, applies, field_names
    from core.models import MODELS

    m = metrics or {}
    model = str(config.get("model", ""))
    if model not in MODELS or not set(config) <= set(field_names()) | set(DERIVED):
        return [(k.replace("_", " "), _fmt(v)) for k, v in config.items() if v is not None]
    get = config.get
    size = get("image_size") or MODELS[model].image_size
    crop = {"squash": "whole frame resized", "center": "largest centred square"}.get(
        str(get("crop", "squash")), str(get("crop")))
    rows = [("Model", f"{MODELS[model].title} · {model}"),
            ("Dataset", str(get("data_dir") or "—")),
            ("Image size", f"{size}×{size} px ({crop})")]
    fractions = (f"{_pct(get('val_fraction'))} of lesions for validation, "
                 f"{_pct(get('test_fraction'))} for test")
    rows.append(("Split", f"grouped by lesion, seed {get('seed')}: {fractions}"
                 if get("split", "lesion") == "lesion" else
                 f"{get('split')} (the study's; scores inflated), seed {get('seed')}"))
    balance = str(get("balance", ""))
    rows.append(("Balancing", "class weights in the loss" if balance == "class-weights" else
                 f"training part resampled to {balance.split(':', 1)[1]} images per class"
                 if balance.startswith("resample:") else balance or "none"))
    rows.append(("Epochs", _epochs(config, m)))
    schedule = ", cosine schedule" if get("lr_schedule") == "cosine" else ""
    rows.append(("Optimiser", f"Adam, learning rate {get('learning_rate'):g}{schedule}, "
                              f"batch {get('batch_size')}"
                 if get("learning_rate") is not None else "—"))
    rows.append(("Augmentation", "random flips, rotations, zoom, brightness and contrast"
                 if get("augment") else "off"))
    if get("label_smoothing"):
        rows.append(("Label smoothing", f"{get('label_smoothing'):g}"))
    if applies("weights", model):
        weights = str(get("weights", "imagenet"))
        rows.append(("ImageNet weights", {"imagenet": "ImageNet (pretrained)",
                                          "none": "none (random start)"}.get(weights, weights)))
    if model in TRANSFER:
        tuned = int(get("fine_tune") or 0) if applies("fine_tune", model) else 0
        cached = " (head trained on cached features)" if get("cache_features") else ""
        rows.append(("Backbone", f"last {tuned} layers fine-tuned" if tuned
                     else f"frozen{cached}"))
    if get("init_from"):
        rows.append(("Started from", str(get("init_from"))))
    if get("mixed_precision"):
        rows.append(("Precision", "mixed float16"))
    if get("strategy", "default") != "default":
        rows.append(("Strategy", f"{get('strategy')}, {get('replicas', '?')} replicas"))
    return rows


def _pct(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else "?"


def _epochs(config: dict[str, Any], m: dict[str, Any]) -> str:
    """'2 of 2 run; best epoch 2 kept (lowest validation loss)'."""
    planned, ran, best = config.get("epochs"), m.get("epochs_completed"), m.get("best_epoch")
    text = f"{ran} of {planned} run" if ran is not None else f"{planned}"
    if m.get("early_stopped"):
        text += (f" (stopped early: {config.get('early_stopping')} epochs without a better "
                 f"{config.get('monitor', 'val_loss')})")
    elif m.get("stopped"):
        text += " (stopped by the user)"
    elif config.get("early_stopping"):
        text += f"; early stopping after {config.get('early_stopping')} epochs"
    if best is not None:
        kept = {"val_loss": "lowest validation loss",
                "val_balanced_accuracy": "highest validation balanced accuracy"}.get(
            str(config.get("monitor", "val_loss")), str(config.get("monitor")))
        text += f"; best epoch {best} kept ({kept})"
    return text


def render_html(data: ReportData) -> str:
    """The whole report as one HTML document with its figures inline (base64 PNG)."""
    esc = html.escape
    parts = [f"<h1>{esc(data.title)}</h1>",
             f"<p class='notice'>⚕ {esc(NOTICE)}</p>",
             "<h2>Dataset, split and configuration</h2>",
             _table(settings_rows(data.config, data.metrics)) if data.config
             else "<p>Not recorded.</p>",
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
    parts += subgroups_html(data.metrics)
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


def render_pdf(data: ReportData, target: Path) -> None:
    """The same report as an A4 PDF: a summary page, the figures, subgroups, the model card
    (laid out by `core.report_pdf`)."""
    from core import report_pdf

    report_pdf.render_pdf(data, target)


def subgroups_html(m: dict[str, Any]) -> list[str]:
    """The "Subgroups" section: the largest-gap sentence and the table ([] without them)."""
    from core.subgroups import HEADINGS, cell, table_rows

    rows = m.get("subgroups") or []
    if not rows:
        return []
    esc = html.escape
    head = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in HEADINGS) + "</tr>"
    body = ""
    for row, texts in zip(rows, table_rows(rows), strict=True):
        tips = ["", "", "", "", *(cell(row, key)[1] for key in
                                  ("balanced_accuracy", "melanoma_recall", "macro_auc"))]
        body += "<tr>" + "".join(f"<td title='{esc(tip)}'>{esc(text)}</td>" if tip
                                 else f"<td>{esc(text)}</td>"
                                 for text, tip in zip(texts, tips, strict=True)) + "</tr>"
    gap = m.get("largest_subgroup_gap")
    reasons = sorted({str(r[f"{k}_reason"]) for r in rows for k in
                      ("balanced_accuracy", "melanoma_recall", "macro_auc")
                      if r.get(k) is None and r.get(f"{k}_reason")})
    return ["<h2>Subgroups</h2>",
            f"<p>Largest gap: {esc(gap)}.</p>" if gap else "",
            "<p>95% CIs resample whole lesions within each subgroup.</p>",
            f"<table>{head}{body}</table>",
            f"<p>Not computed: {esc('; '.join(reasons))}.</p>" if reasons else ""]


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
