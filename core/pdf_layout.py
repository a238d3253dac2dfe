"""Typesetting for the PDF report: A4 pages of matplotlib text, tables and figures.

`Flow` places blocks top to bottom and starts a new page when one does not fit: a figure
moves whole to the next page (or shrinks a little), tables and text split by rows and lines,
so no page is left almost empty. `core.report_pdf` says what goes on the pages.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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


class Flow:
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
