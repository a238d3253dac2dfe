"""The run report as a typeset A4 PDF (matplotlib only: PdfPages, Agg for the figures).

Page 1 carries the title, the not-a-medical-device notice, the headline metrics with their
95% CIs, what they were measured on and the settings that matter for the model; the
figures, the per-class table, the subgroups and the model card follow. Blocks flow from
page to page (`_Flow`): a figure moves whole to the next page when it does not fit, tables
and text split by rows and lines, so no page is left almost empty.
"""

from __future__ import annotations

import io
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import paths

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from core.report import ReportData

A4 = (8.27, 11.69)  # inches, portrait
MARGIN = 0.6
TOP, BOTTOM = 0.6, A4[1] - 0.65  # the text area, in inches from the top of the page
WIDTH = A4[0] - 2 * MARGIN
BODY = 9.0  # points
INK, MUTED, RULE, ZEBRA = "#222222", "#666666", "#bbbbbb", "#f2f4f7"
NOTICE_FILL, NOTICE_EDGE = "#fff4d6", "#e0b84c"
FIGURE_DPI = 200
SHRINK = 0.75  # a figure may shrink to this share of its size to stay on a page


@lru_cache(maxsize=4096)
def _width(text: str, size: float, bold: bool = False) -> float:
    """The width of `text` in inches, set in matplotlib's default (proportional) font."""
    from matplotlib.font_manager import FontProperties

    width, _, _ = _renderer().get_text_width_height_descent(
        text, FontProperties(size=size, weight="bold" if bold else "normal"), ismath=False)
    return float(width) / 72.0


@lru_cache(maxsize=1)
def _renderer() -> Any:
    from matplotlib.backends.backend_agg import RendererAgg

    return RendererAgg(10, 10, 72)


def wrap(text: str, width: float, size: float = BODY, bold: bool = False) -> list[str]:
    """`text` broken into lines no wider than `width` inches (words longer than a line are
    cut)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if _width(candidate, size, bold) <= width or not line:
                line = candidate
            else:
                lines.append(line)
                line = word
            while _width(line, size, bold) > width and len(line) > 1:
                cut = max(1, int(len(line) * width / _width(line, size, bold)) - 1)
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


def _line_height(size: float) -> float:
    return size * 1.35 / 72.0


def _lines(ax: Axes, x: float, top: float, lines: list[str], size: float, bold: bool = False,
           color: str = INK, ha: str = "left") -> None:
    """Draw `lines` from `top` (inches) down, each on its own baseline, so that cells and
    columns line up whatever their letters."""
    for k, line in enumerate(lines):
        ax.text(x, top + size * 0.95 / 72.0 + k * _line_height(size), line, fontsize=size,
                weight="bold" if bold else "normal", color=color, va="baseline", ha=ha)


class _Flow:
    """Pages of A4 filled top to bottom; `y` is the next free height (inches from the top)."""

    def __init__(self) -> None:
        self.pages: list[Figure] = []
        self.ax: Axes | None = None
        self.y = BOTTOM

    @property
    def room(self) -> float:
        """The height left on the current page."""
        return BOTTOM - self.y

    def page(self) -> Axes:
        """Start a new page; returns its full-page axes (inches, y downwards)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=A4)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, A4[0])
        ax.set_ylim(A4[1], 0)
        ax.set_axis_off()
        self.pages.append(fig)
        self.ax, self.y = ax, TOP
        return ax

    def need(self, height: float) -> Axes:
        """The current page when `height` inches fit on it, else a new page."""
        if self.ax is None or (height > self.room and self.y > TOP):
            return self.page()
        return self.ax

    def text(self, text: str, size: float = BODY, bold: bool = False, color: str = INK,
             x: float = MARGIN, width: float = WIDTH, gap: float = 0.0) -> None:
        """A wrapped paragraph (split across pages by lines), then `gap` inches."""
        step = _line_height(size)
        for line in wrap(text, width - (x - MARGIN), size, bold):
            ax = self.need(step)
            _lines(ax, x, self.y, [line], size, bold, color)
            self.y += step
        self.y += gap

    def heading(self, text: str, keep: float = 1.0) -> None:
        """A section heading, moved to the next page unless `keep` inches fit below it."""
        ax = self.need(0.42 + keep)
        self.y += 0.12
        ax.text(MARGIN, self.y, text, fontsize=12.5, weight="bold", color=INK, va="top")
        self.y += 0.3

    def notice(self, text: str) -> None:
        """The not-a-medical-device notice in a tinted box."""
        from matplotlib.patches import FancyBboxPatch

        lines = wrap("⚕ " + text, WIDTH - 0.3, 9.5, bold=True)
        height = len(lines) * _line_height(9.5) + 0.2
        ax = self.need(height)
        ax.add_patch(FancyBboxPatch((MARGIN, self.y), WIDTH, height,
                                    boxstyle="round,pad=0,rounding_size=0.06",
                                    facecolor=NOTICE_FILL, edgecolor=NOTICE_EDGE, lw=0.8))
        _lines(ax, MARGIN + 0.15, self.y + 0.1, lines, 9.5, True, "#5a4000")
        self.y += height + 0.18

    def table(self, head: list[str] | None, rows: list[list[str]], size: float = 8.5,
              widths: list[float] | None = None, right: set[int] | None = None,
              gap: float = 0.15) -> None:
        """A table with wrapped cells and zebra rows; split by rows, the header repeated."""
        if not head and not rows:
            return
        cols = widths or _column_widths(head, rows, size)
        right = right or set()
        pad, step = 0.05, _line_height(size)

        def lay(cells: list[str], bold: bool) -> tuple[list[list[str]], float]:
            wrapped = [wrap(c, w - 2 * pad, size, bold) for c, w in zip(cells, cols,
                                                                       strict=True)]
            return wrapped, max(len(w) for w in wrapped) * step + 0.06

        def place(wrapped: list[list[str]], height: float, bold: bool,
                  shade: str | None) -> None:
            from matplotlib.patches import Rectangle

            ax = self.ax
            assert ax is not None
            if shade:
                ax.add_patch(Rectangle((MARGIN, self.y), sum(cols), height,
                                       facecolor=shade, edgecolor="none"))
            x = MARGIN
            for i, (lines, w) in enumerate(zip(wrapped, cols, strict=True)):
                _lines(ax, x + w - pad if i in right else x + pad, self.y + 0.03, lines, size,
                       bold, ha="right" if i in right else "left")
                x += w
            self.y += height
            if bold:
                ax.plot([MARGIN, MARGIN + sum(cols)], [self.y, self.y], color=RULE, lw=0.8)

        header = lay(head, True) if head else None
        body = [lay(row, False) for row in rows]
        self.need((header[1] if header else 0) + (body[0][1] if body else 0))
        if header:
            place(*header, True, None)
        for index, (wrapped, height) in enumerate(body):
            if height > self.room:
                self.page()
                if header:
                    place(*header, True, None)
            place(wrapped, height, False, ZEBRA if index % 2 else None)
        self.y += gap

    def figure(self, name: str, fig: Figure, note: str = "") -> None:
        """A heading and a figure (rasterized), scaled to the text width; kept together,
        shrunk by up to a quarter rather than moved to the next page."""
        import matplotlib.image as mpimg

        w, h = fig.get_size_inches()
        scale = min(1.0, WIDTH / w)
        room = self.room - 0.52  # less the heading and the gap below
        if self.ax is not None and h * scale > room >= SHRINK * h * scale:
            scale *= room / (h * scale)
        self.heading(name, keep=h * scale + 0.1)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=FIGURE_DPI)
        buffer.seek(0)
        ax = self.need(h * scale)
        left = MARGIN + (WIDTH - w * scale) / 2
        fig_ax = ax.figure.add_axes((left / A4[0], 1 - (self.y + h * scale) / A4[1],
                                     w * scale / A4[0], h * scale / A4[1]))
        fig_ax.imshow(mpimg.imread(buffer), interpolation="antialiased")
        fig_ax.set_axis_off()
        self.y += h * scale + 0.1
        if note:
            self.text(note, size=8, color=MUTED, gap=0.1)


def _column_widths(head: list[str] | None, rows: list[list[str]], size: float) -> list[float]:
    """Each column as wide as its widest cell (plus padding), shrunk to the text width by
    narrowing the widest columns (their cells then wrap)."""
    table = [head, *rows] if head else rows
    natural = [max(_width(r[i], size, bold=head is not None and r is head) for r in table)
               + 0.12 for i in range(len(table[0]))]
    while sum(natural) > WIDTH:
        widest = max(range(len(natural)), key=natural.__getitem__)
        others = sum(natural) - natural[widest]
        natural[widest] = max(0.6, WIDTH - others, natural[widest] * 0.9)
        if natural[widest] == 0.6 or others >= WIDTH:
            scale = WIDTH / sum(natural)
            natural = [n * scale for n in natural]
    return natural


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


def _title(flow: _Flow, data: ReportData) -> None:
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


def _card(flow: _Flow, card: str) -> None:
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


def _subgroups(flow: _Flow, m: dict[str, Any]) -> None:
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

    flow = _Flow()
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
