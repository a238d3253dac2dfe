"""Refused, and why: the one place that combines the two checks an image goes through.

1. The modality check (`core.modality`, app-wide): is it a dermoscopic image at all?
2. The familiarity gate (`core.domain`, per model): is it like this model's training images?

The CLI, the Classify view, the CSV and `evaluate` all take their verdict and words from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

CLINICAL, OTHER, UNFAMILIAR = "clinical", "other", "unfamiliar"
REASONS = (CLINICAL, OTHER, UNFAMILIAR)
TEXT = {
    CLINICAL: "This looks like a clinical photo of skin, not a dermoscopic image: the model "
              "was trained on dermoscopic images only, so no diagnosis is shown.",
    OTHER: "This does not look like a medical image of skin: the model was trained on "
           "dermoscopic images only, so no diagnosis is shown.",
    UNFAMILIAR: "This looks dermoscopic, but unlike this model's training images (another "
                "device, stain or kind of lesion?), so no diagnosis is shown.",
}
SHORT = {CLINICAL: "clinical photo", OTHER: "other image", UNFAMILIAR: "unfamiliar"}


def reason(modality: str | None, familiar: bool | None) -> str:
    """Why an image is refused ("" when it is not): the modality check speaks first."""
    if modality in (CLINICAL, OTHER):
        return str(modality)
    if familiar is False:
        return UNFAMILIAR
    return ""


def reasons(modalities: Sequence[str] | None, familiar: np.ndarray | None, n: int) -> list[str]:
    """`reason` for each of `n` images; either check may be absent (None)."""
    return [reason(None if modalities is None else modalities[i],
                   None if familiar is None else bool(familiar[i])) for i in range(n)]


def accepted(why: Sequence[str], gate_present: bool, check_present: bool) -> np.ndarray | None:
    """`in_domain` per image: False where refused, True where both present checks pass;
    None when neither check is present (nothing can be refused)."""
    if not (gate_present or check_present):
        return None
    return np.array([not w for w in why], dtype=bool)


def counts_by_class(why: Sequence[str], labels: Sequence[str]) -> dict[str, dict[str, int]]:
    """How many images each check refused, per true class: {reason: {class: count}}."""
    out: dict[str, dict[str, int]] = {r: {} for r in REASONS}
    for w, label in zip(why, labels, strict=True):
        if w:
            out[w][label] = out[w].get(label, 0) + 1
    return out


def checks_text(p: Any) -> str:
    """What the two checks said of one prediction, for a text line."""
    parts = []
    if p.modality is not None:
        parts.append(f"{p.modality} (P(dermoscopic) {p.modality_score:.2f})")
    if p.domain_score is not None:
        familiar = "unfamiliar" if p.domain_score > 1.0 else "familiar"
        parts.append(f"{familiar} to the model (score {p.domain_score:.2f})")
    return ", ".join(parts)


def health_text(flagged: list[dict[str, Any]], most: int = 20) -> str:
    """The dataset-health lines for images that do not look dermoscopic."""
    if not flagged:
        return "dataset health: every image looks dermoscopic"
    count = "1 image does not" if len(flagged) == 1 else f"{len(flagged)} images do not"
    lines = [f"dataset health: {count} look dermoscopic (in a dermoscopic training set, a "
             "data error):"]
    lines += [f"  {f['image_id']} ({f['dx']}): {SHORT[f['modality']]}, "
              f"P(dermoscopic) {f['score']:.2f}, {f['path']}" for f in flagged[:most]]
    if len(flagged) > most:
        lines.append(f"  ... and {len(flagged) - most} more (--json lists them all)")
    return "\n".join(lines)


def refused_summary(metrics: dict[str, Any]) -> str:
    """How many images an evaluation's checks refused, by reason and true class ('' when
    nothing could be refused), e.g. "3 of 40 refused (still counted): clinical photo 2
    (mel 1, nv 1); unfamiliar 1 (nv 1)"."""
    if metrics.get("out_of_domain") is None:
        return ""
    parts = []
    for why, by_class in (metrics.get("refused_by") or {}).items():
        if by_class:
            detail = ", ".join(f"{c} {n}" for c, n in sorted(by_class.items()))
            parts.append(f"{SHORT[why]} {sum(by_class.values())} ({detail})")
    head = (f"{metrics['out_of_domain']} of {metrics.get('n_images', '?')} refused "
            "(still counted)")
    return head + (": " + "; ".join(parts) if parts else "")
