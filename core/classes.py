"""The seven HAM10000 diagnosis codes and their full names."""

from __future__ import annotations

HAM10000_CLASSES: tuple[str, ...] = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")

FULL_NAMES: dict[str, str] = {
    "akiec": "Actinic keratoses / intraepithelial carcinoma",
    "bcc": "Basal cell carcinoma",
    "bkl": "Benign keratosis-like lesions",
    "df": "Dermatofibroma",
    "mel": "Melanoma",
    "nv": "Melanocytic nevi",
    "vasc": "Vascular lesions",
}

SHORT_NAMES: dict[str, str] = {  # for chart labels, where the full names squeeze the bars
    "akiec": "Actinic keratosis",
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
