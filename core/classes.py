"""Diagnosis codes of the datasets we read (lower-case, short) and their full names.

HAM10000 / ISIC 2018 have seven classes; ISIC 2019 splits HAM's `akiec` into its own `ak`
and `scc` (kept apart, not merged); ISIC 2020 is binary: `mel` (its target 1, which is
exactly diagnosis melanoma) against `benign` (everything else), so melanoma recall is
reported for it as for the others.
"""

from __future__ import annotations

HAM10000_CLASSES: tuple[str, ...] = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
ISIC2019_CLASSES: tuple[str, ...] = ("ak", "bcc", "bkl", "df", "mel", "nv", "scc", "vasc")
ISIC2020_CLASSES: tuple[str, ...] = ("benign", "mel")

FULL_NAMES: dict[str, str] = {
    "akiec": "Actinic keratoses / intraepithelial carcinoma",
    "ak": "Actinic keratosis",
    "scc": "Squamous cell carcinoma",
    "benign": "Benign lesion",
    "malignant": "Malignant",
    "bcc": "Basal cell carcinoma",
    "bkl": "Benign keratosis-like lesions",
    "df": "Dermatofibroma",
    "mel": "Melanoma",
    "nv": "Melanocytic nevi",
    "vasc": "Vascular lesions",
}

SHORT_NAMES: dict[str, str] = {  # for chart labels, where the full names squeeze the bars
    "akiec": "Actinic keratosis",
    "ak": "Actinic keratosis",
    "scc": "Squamous cell carcinoma",
    "benign": "Benign",
    "malignant": "Malignant",
    "bcc": "Basal cell carcinoma",
    "bkl": "Benign keratosis",
    "df": "Dermatofibroma",
    "mel": "Melanoma",
    "nv": "Melanocytic nevus",
    "vasc": "Vascular lesion",
}

MELANOMA = "mel"


def full_name(code: str) -> str:
    """Full diagnosis name for a class code; unknown codes are returned unchanged."""
    return FULL_NAMES.get(code.lower(), code)


def short_name(code: str) -> str:
    """A short diagnosis name (chart labels); unknown codes are returned unchanged."""
    return SHORT_NAMES.get(code.lower(), code)
