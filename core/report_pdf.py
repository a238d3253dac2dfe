"""The run report as a typeset A4 PDF (matplotlib only: PdfPages, Agg for the figures).

Page 1 carries the title, the not-a-medical-device notice, the headline metrics with their
95% CIs, what they were measured on and the settings that matter for the model; the
figures, the per-class table, the subgroups and the model card follow, flowing from page
to page (`core.pdf_layout.Flow`).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import paths
from core.pdf_layout import A4, INK, MARGIN, MUTED, WIDTH, Flow

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from core.report import ReportData


def _overall(m: dict[str, Any]) -> dict[str, Any]:
    """The subgroup table's row for all images ({} without subgroups)."""
    rows: list[dict[str, Any]] = m.get("subgroups") or []
    return next((r for r in rows if r.get("column") == "all"), {})


def _ci(ci: Any) -> str:
    return f"{ci[0]:.3f} – {ci[1]:.3f}" if ci else "—"


def summary_rows(m: dict[str, Any]) -> list[list[str]]:
    """Metric, value, 95% CI and a note: the headline figures of page 1.

    The balanced-accuracy CI is the headline one; melanoma recall's and macro AUC's come
    from the subgroup table's overall row (lesions resampled) when the metrics have it.
    """
    from core.report import _fmt

    overall = _overall(m)
    unit = m.get("ci_unit", "image")
    resampled = "over lesions" if unit == "lesion" else "over images (1 per lesion)"

    def other(key: str) -> tuple[str, str]:
        if overall.get(key) is not None and overall.get(f"{key}_ci95"):
            return _ci(overall[f"{key}_ci95"]), "bootstrap over lesions"
        return "—", str(overall.get(f"{key}_reason") or "")

    mel_ci, mel_note = other("melanoma_recall")
    auc_ci, auc_note = other("macro_auc")
    rows = [["Balanced accuracy (ISIC 2018)", _fmt(m.get("balanced_accuracy")),
             _ci(m.get("balanced_accuracy_ci95")),
             f"bootstrap {resampled}" if m.get("balanced_accuracy_ci95") else ""],
            ["Melanoma recall", _fmt(m.get("melanoma_recall")), mel_ci, mel_note],
            ["Macro AUC (one vs. rest)", _fmt(m.get("macro_auc")), auc_ci, auc_note],
            ["Accuracy", _fmt(m.get("accuracy")), "", ""],
            ["Majority baseline (accuracy)", _fmt(m.get("majority_baseline_accuracy")), "",
             f"always answering {m.get('majority_class', '?')}"]]
    if m.get("ece") is not None:
        rows.append(["Expected calibration error", _fmt(m.get("ece")), "",
                     "15 bins; lower is better"])
    if m.get("out_of_domain") is not None:
        rows.append(["Refused by the out-of-distribution gate", str(m["out_of_domain"]), "",
                     f"of {m.get('n_images', '?')} images; still counted in the metrics"])
    return rows


def measured_on(data: ReportData) -> str:
    """One sentence: which part of which data the figures were measured on, n images and
    lesions."""
    m = data.metrics
    overall = _overall(m)
    lesions = overall.get("n_lesions", data.lesions)
    count = f"{m.get('n_images', '?')} images" + (f" of {lesions} lesions" if lesions else "")
    part = m.get("evaluated_on")
    if part == "test":
        where = ("the held-out test part of the lesion-grouped split (used for no training, "
                 "model choice or calibration)")
    elif part == "val":
        where = "the validation part (seed-leaky split: the scores are inflated)"
    else:
        where = f"the folder {m['data']}" if m.get("data") else "the evaluated images"
    return f"Measured on {where}: {count}."


def warnings(m: dict[str, Any]) -> list[str]:
    """The warnings that qualify every figure (seen images, a leaky split)."""
    out = []
    if m.get("seen_in_training"):
        out.append(f"Warning: {m['seen_in_training']} of these images were used to train "
                   "this model; its scores here are inflated.")
    if m.get("leaky"):
        out.append("Warning: seed-leaky split: copies of an image sit in training and "
                   "validation, so these scores are inflated.")
    return out


def _title(flow: Flow, data: ReportData) -> None:
    """The model's name as the title, the run or evaluation and the dates under it."""
    from core.models import MODELS

    model = str(data.config.get("model") or "")
    spec = MODELS.get(model)
    name = spec.title if spec else (Path(model).name if model else "Skin-lesion classifier")
    ax = flow.page()
    ax.text(MARGIN, flow.y, name, fontsize=20, weight="bold", color=INK, va="top")
    flow.y += 0.42
    when = f"{data.date} · " if data.date else ""
    flow.text(f"{data.title} · {when}report written {datetime.now():%Y-%m-%d}", size=10.5,
              color=MUTED, gap=0.15)


def _card(flow: Flow, card: str) -> None:
    """The model card: Markdown-ish text set with headings, bullets and tables."""
    flow.heading("Model card", keep=0.6)
    if not card:
        flow.text("This model file carries no model card.")
        return
    table: list[list[str]] = []

    def plain(text: str) -> str:
        return re.sub(r"\*\*|`|\[([^]]*)\]\([^)]*\)", lambda g: g.group(1) or "", text)

    def flush() -> None:
        if table:
            flow.table(table[0], table[1:], size=7.5)
            table.clear()

    paragraph: list[str] = []

    def end_paragraph() -> None:
        if paragraph:
            text = " ".join(paragraph)
            bullet = text.startswith("- ")
            flow.text(("• " + text[2:]) if bullet else text, x=MARGIN + (0.15 if bullet else 0),
                      gap=0.04 if bullet else 0.08)
            paragraph.clear()

    for raw in card.splitlines():
        line = plain(raw.strip())
        if line.startswith("|"):
            end_paragraph()
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells if c):
                table.append(cells)
            continue
        flush()
        if not line:
            end_paragraph()
        elif line.startswith("#"):
            end_paragraph()
            flow.text(line.lstrip("# "), size=10.5, bold=True, gap=0.04)
        elif line.startswith("- ") or re.match(r"\d+\. ", line):
            end_paragraph()
            paragraph.append(line)
        else:
            paragraph.append(line)
    end_paragraph()
    flush()


def _subgroups(flow: Flow, m: dict[str, Any]) -> None:
    """The subgroup table (95% CIs, lesions resampled) and its largest-gap sentence."""
    from core.subgroups import HEADINGS, MIN_IMAGES, MIN_MELANOMAS, table_rows

    rows = m.get("subgroups") or []
    if not rows:
        return
    flow.heading("Subgroups", keep=1.2)
    if m.get("largest_subgroup_gap"):
        flow.text(f"Largest gap: {m['largest_subgroup_gap']}.", gap=0.05)
    flow.text(f"95% CIs resample whole lesions within each subgroup. 'too few': under "
              f"{MIN_IMAGES} images or {MIN_MELANOMAS} melanomas; 'one class': one diagnosis "
              "only.", size=8, color=MUTED, gap=0.08)
    flow.table(list(HEADINGS), table_rows(rows), size=8, right={2, 3, 4, 5, 6})


def pdf_pages(data: ReportData) -> list[Figure]:
    """The report's A4 pages as matplotlib figures (what `render_pdf` writes)."""
    from core.report import NOTICE, PER_CLASS_KEYS, _figures, per_class_rows, settings_rows

    flow = Flow()
    _title(flow, data)
    flow.notice(NOTICE)
    m = data.metrics
    flow.heading("Headline metrics", keep=1.5)
    flow.text(measured_on(data), gap=0.06)
    for line in warnings(m):
        flow.text(line, bold=True, color="#a00000", gap=0.04)
    flow.table(["Metric", "Value", "95% CI", "Note"], summary_rows(m), size=9,
               right={1})
    settings = settings_rows(data.config, m)
    if settings:
        flow.heading("Settings", keep=1.0)
        flow.table(None, [list(r) for r in settings], size=9, widths=[1.7, WIDTH - 1.7])
    figures = _figures(data)
    per_class = per_class_rows(m)
    for name, fig in figures.items():
        flow.figure(name, fig)
        if name.startswith("Confusion") and per_class:
            flow.heading("Per-class report", keep=1.5)
            flow.table(["class", "full name", *PER_CLASS_KEYS], per_class, size=8.5,
                       right=set(range(2, 2 + len(PER_CLASS_KEYS))))
    if per_class and not any(n.startswith("Confusion") for n in figures):
        flow.heading("Per-class report", keep=1.5)
        flow.table(["class", "full name", *PER_CLASS_KEYS], per_class, size=8.5,
                   right=set(range(2, 2 + len(PER_CLASS_KEYS))))
    _subgroups(flow, m)
    _card(flow, data.card)
    for number, page in enumerate(flow.pages, 1):
        page.text(MARGIN / A4[0], 0.3 / A4[1], f"{data.title} · research software, not a "
                  "medical device", fontsize=7.5, color=MUTED, va="bottom")
        page.text(1 - MARGIN / A4[0], 0.3 / A4[1], f"page {number} of {len(flow.pages)}",
                  fontsize=7.5, color=MUTED, va="bottom", ha="right")
    return flow.pages


def render_pdf(data: ReportData, target: Path) -> None:
    """Write `data` as an A4 PDF (atomically)."""
    from matplotlib.backends.backend_pdf import PdfPages

    pages = pdf_pages(data)
    with paths.atomic_path(target) as tmp, PdfPages(tmp) as pdf:
        for page in pages:
            pdf.savefig(page)
