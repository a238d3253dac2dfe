"""Benchmark: how well a model's out-of-distribution gate refuses what is not a skin lesion.

    python bench/ood.py [--model MODEL.keras] [--extra DIR ...] [--json]

Scores, with the model's stored recipe, and prints the fraction refused (domain score above
1.0) of:
- `../shared/datasets/ood-photos/` (300 ImageNet photos, one per class): target >= 95%;
- synthetic non-skin images made here: noise, flat colours, gradients, text pages,
  screenshot-like blocks, checkerboards, 20 each;
- the app's own icon;
- the lesion-grouped test part of `../shared/datasets/ham10000` (seed 42, as the bundled
  model's split): target <= 5%;
- `../shared/datasets/ph2` (another clinic's dermoscopic images): as few as possible;
- each `--extra` folder of other non-skin images, e.g. the sample photos inside
  scikit-image's wheel (`pip download --no-deps scikit-image`, unzip `skimage/data/`).
Without `--model` the bundled default model is used.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, SHARED_HAM, print_table

SHARED = SHARED_HAM.parent
KINDS = ("noise", "flat colour", "gradient", "text page", "screenshot", "checkerboard")


def synthetic_images(kind: str, n: int, size: int, seed: int = 0) -> np.ndarray:
    """`n` non-skin images of one `kind` (uint8, size x size x 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        colour = rng.integers(0, 256, 3)
        if kind == "noise":
            a = rng.integers(0, 256, (size, size, 3))
        elif kind == "flat colour":
            a = np.broadcast_to(colour, (size, size, 3))
        elif kind == "gradient":
            w = rng.random(2)
            a = ((w[0] * yy + w[1] * xx) / w.sum())[..., None] * colour
        elif kind == "text page":
            a = np.full((size, size, 3), 250)
            for row in range(size // 16, size - size // 16, max(4, size // 13)):
                a[row:row + max(2, size // 32), size // 16:rng.integers(size // 3, size)] = 20
        elif kind == "screenshot":
            a = np.full((size, size, 3), 240)
            for _ in range(6):
                y, x = rng.integers(0, size * 3 // 4, 2)
                a[y:y + rng.integers(8, size // 4), x:x + rng.integers(8, size // 2)] = \
                    rng.integers(0, 256, 3)
        else:
            period = int(rng.integers(4, 20)) * size // 128 + 1
            cells = ((np.mgrid[0:size, 0:size] // period).sum(axis=0) % 2)[..., None]
            a = cells * colour + 20
        out.append(np.clip(a, 0, 255).astype(np.uint8))
    return np.stack(out)


def refused(loaded: Any, images: np.ndarray) -> tuple[float, int]:
    """(fraction refused, count) of `images` under the model's gate."""
    scores = loaded.classify(images)
    assert scores.in_domain is not None
    return float((~scores.in_domain).mean()), int(len(images))


def lesion_test_part(data: Path) -> tuple[Any, np.ndarray]:
    """The dataset and the positions of its lesion-grouped test part (seed 42)."""
    from core.dataset import load_dataset
    from core.splits import split_lesion

    dataset = load_dataset(data)
    subset = split_lesion(dataset.records, seed=42).to_numpy()
    return dataset, np.flatnonzero(subset == "test")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="default: the bundled model")
    parser.add_argument("--extra", type=Path, nargs="*", default=[],
                        help="folders of other images that are not dermoscopic lesions")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from core.images import load_images, read_image
    from core.inference import resolve_model

    loaded = resolve_model(args.model)
    if loaded.domain is None:
        raise SystemExit(f"{loaded.path.name} has no out-of-distribution gate")
    size, crop = loaded.info.image_size, loaded.info.crop
    rows: list[dict[str, Any]] = []

    def add(name: str, images: np.ndarray, target: str = "") -> None:
        fraction, n = refused(loaded, images)
        rows.append({"set": name, "images": n, "refused": fraction, "target": target})

    photos = sorted((SHARED / "ood-photos").glob("*.jpg"))
    if photos:
        add("ood-photos (ImageNet)", np.stack([read_image(p, size, crop) for p in photos]),
            ">= 0.95")
    for k, kind in enumerate(KINDS):
        add(f"synthetic: {kind}", synthetic_images(kind, 20, size, seed=k))
    add("app icon", read_image(ROOT / "resources" / "icons" / "app.png", size, crop)[None])
    for folder in args.extra:
        from core.dataset import IMAGE_SUFFIXES

        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        add(f"extra: {folder.name}", np.stack([read_image(p, size, crop) for p in files]))
    if (SHARED_HAM / "HAM10000_metadata.csv").is_file():
        dataset, test = lesion_test_part(SHARED_HAM)
        dataset.records = dataset.records.iloc[test].reset_index(drop=True)
        add("HAM10000 test part (lesion split)", load_images(dataset, size, crop).images,
            "<= 0.05")
    if (SHARED / "ph2").is_dir():
        from core.dataset import load_dataset

        add("PH2 (another clinic)", load_images(load_dataset(SHARED / "ph2"), size,
                                                crop).images)
    if args.json:
        print(json.dumps({"model": loaded.path.name, "gate": loaded.info.domain,
                          "rows": rows}, indent=2))
    else:
        print(f"model: {loaded.path.name}")
        print_table(rows, [("set", "set", "s"), ("images", "images", "d"),
                           ("refused", "refused", ".3f"), ("target", "target", "s")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
