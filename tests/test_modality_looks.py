"""The look groups that `tools/train_modality.py` leaves out in turn, as unseen devices."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

TOOL = Path(__file__).resolve().parents[1] / "tools" / "modality_looks.py"


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("modality_looks", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def frame(rng: np.random.Generator, tint: tuple[int, int, int], round_field: bool) -> Image.Image:
    """A 200x150 'lesion': a brown blob on tinted skin, inside a dark round field or not."""
    yy, xx = np.mgrid[0:150, 0:200]
    a = np.empty((150, 200, 3), np.float32)
    a[:] = tint
    a += rng.normal(0, 6, a.shape)
    cx, cy, r = rng.uniform(80, 120), rng.uniform(60, 90), rng.uniform(15, 30)
    a[np.hypot(xx - cx, yy - cy) < r] = (110, 70, 50)
    if round_field:
        a[np.hypot(xx - 100, yy - 75) > 80] = 5
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def test_round_field_frames_form_their_own_group_and_lesions_stay_whole() -> None:
    looks = load_tool()
    rng = np.random.default_rng(0)
    kinds = [((230, 170, 160), False), ((200, 200, 215), False), ((230, 170, 160), True)]
    images, lesions, kind_of = [], [], []
    for k, (tint, field) in enumerate(kinds):
        for i in range(12):
            images.append(frame(rng, tint, field))
            lesions.append(f"lesion{k}-{i // 2}")  # two images per lesion
            kind_of.append(k)
    # one lesion photographed both ways: its images must share a group
    images.append(frame(rng, kinds[0][0], True))
    lesions.append("lesion0-0")
    kind_of.append(2)

    groups = looks.look_groups(images, lesions, k=3)

    assert len(groups) == len(images)
    by_lesion: dict[str, set[int]] = {}
    for lesion, group in zip(lesions, groups, strict=True):
        by_lesion.setdefault(lesion, set()).add(int(group))
    assert all(len(g) == 1 for g in by_lesion.values())
    field_groups = {int(g) for g, k, lesion in zip(groups, kind_of, lesions, strict=True)
                    if k == 2 and lesion != "lesion0-0"}
    plain_groups = {int(g) for g, k in zip(groups, kind_of, strict=True) if k != 2}
    assert len(field_groups) == 1 and not field_groups & plain_groups
