"""The report export dialog's filter decides the suffix of a name typed without one."""

from __future__ import annotations

import pytest

from gui.save_names import REPORT_FILTERS, filter_suffixes, with_filter_suffix

HTML, PDF = REPORT_FILTERS.split(";;")


def test_the_report_dialog_offers_html_and_pdf() -> None:
    assert (HTML, PDF) == ("HTML report (*.html)", "PDF report (*.pdf)")
    assert filter_suffixes(REPORT_FILTERS) == [".html", ".pdf"]


@pytest.mark.parametrize(("typed", "chosen", "saved"), [
    ("/r/report", PDF, "/r/report.pdf"),
    ("/r/report", HTML, "/r/report.html"),
    ("/r/report.pdf", HTML, "/r/report.pdf"),    # a suffix the user typed wins
    ("/r/report.HTML", PDF, "/r/report.HTML"),
    ("/r/v1.2", PDF, "/r/v1.2.pdf"),             # a dot in the name is not a report suffix
    ("", PDF, ""),                               # cancelled
])
def test_the_chosen_filter_decides_a_missing_suffix(typed: str, chosen: str,
                                                    saved: str) -> None:
    assert with_filter_suffix(typed, chosen, REPORT_FILTERS) == saved
