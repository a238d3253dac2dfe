"""Colouring a matplotlib figure from a theme's four colours; no Qt, so a painter process
can use it too (`gui.theme.style_figure` reads the colours from a Qt palette)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KEEP_COLOUR = "keep-colour"  # the gid of a matplotlib text whose colour the theme keeps


def _text_role(text: Any) -> str:
    """'fg' for a text drawn black (matplotlib's default), 'muted' for a grey one, '' for a
    coloured text or one marked KEEP_COLOUR; decided once, from its first colour."""
    role = getattr(text, "_theme_role", None)
    if role is None:
        from matplotlib.colors import to_rgba

        red, green, blue, _ = to_rgba(text.get_color())
        role = ""
        if text.get_gid() != KEEP_COLOUR and red == green == blue:
            role = "fg" if red <= 0.2 else "muted" if red < 0.8 else ""
        text._theme_role = role
    return str(role)


def colour_figure(figure: Any, colours: Mapping[str, str]) -> None:
    """Colour `figure`: backgrounds (`window`, `base`), spines (`muted`), ticks (`fg`) and
    the default-coloured texts (titles, labels, tick labels, legends, notes)."""
    from matplotlib.text import Text

    figure.set_facecolor(colours["window"])
    for ax in figure.axes:
        ax.set_facecolor(colours["base"])
        for spine in ax.spines.values():
            spine.set_edgecolor(colours["muted"])
        ax.tick_params(which="both", colors=colours["fg"])
        legend = ax.get_legend()
        if legend is not None:
            legend.get_frame().set_facecolor(colours["base"])
            legend.get_frame().set_edgecolor(colours["muted"])
    for text in figure.findobj(Text):
        role = _text_role(text)
        if role:
            text.set_color(colours[role])
