"""File names from save dialogs: the chosen filter decides a suffix the user left out."""

from __future__ import annotations

import re
from pathlib import Path


def filter_suffixes(name_filter: str) -> list[str]:
    """The suffixes a Qt name filter lists: 'PDF report (*.pdf)' -> ['.pdf']."""
    return [s.lower() for s in re.findall(r"\*(\.[\w.]+)", name_filter)]


def with_filter_suffix(path: str, chosen_filter: str, all_filters: str = "") -> str:
    """`path` as typed, or with the chosen filter's first suffix when it has none of the
    suffixes that `all_filters` (or, when empty, the chosen filter) offers."""
    if not path:
        return path
    offered = filter_suffixes(all_filters or chosen_filter)
    wanted = filter_suffixes(chosen_filter)
    if not wanted or Path(path).suffix.lower() in offered:
        return path
    return path + wanted[0]


REPORT_FILTERS = "HTML report (*.html);;PDF report (*.pdf)"
