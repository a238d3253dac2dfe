"""Benchmark: what the two checks refuse, per kind of image.

    python bench/ood.py [--model MODEL.keras] [--extra DIR ...] [--json]

Each image goes through the app-wide modality check (`core.modality`: is it dermoscopic?)
and the model's familiarity gate (`core.domain`), combined as the app does
(`core.refusal`). For each set it prints how many images each check refused, and both:
- clinical camera photos of skin (`../shared/datasets/clinical-photos`), the 20% the
  modality check never saw (`core.negatives.folder_part` = "test"): target >= 90%;
- ordinary photos (`ood-photos`), its held-out 20%: target >= 98%;
- synthetic images of each kind in `core.negatives` (H&E-like tiles, grey X-ray/CT/MRI-like
  scans, fundus-like discs, text, screenshots, ...), 30 each from seeds the check was not
  trained or tuned on: targets >= 95% (slides, scans), >= 98% (the rest);
- the app's own icon;
- HAM10000's lesion-grouped test part (seed 42) and the 600x450 full-resolution sample:
  as few refused as possible;
- PH2 (another clinic's dermoscopic images; never used to fit or tune): target <= 3%;
- each `--extra` folder of other images.
Without `--model` the bundled default model is used.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, SHARED_HAM, print_table
from PIL import Image

SHARED = SHARED_HAM.parent
TEST_SEED = 3000  # the synthetic test part's seeds (tools/train_modality.py: fit 1000, val 2000)


def resized(images: np.ndarray, size: int) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(a).resize((size, size),
                                                          Image.Resampling.BILINEAR))
                     for a in images])


def verdicts(loaded: Any, check: Any, model_images: np.ndarray,
             check_images: np.ndarray) -> dict[str, Any]:
    """Refusal counts of one set: by the modality check, by the gate, and combined."""
    from core.refusal import reasons

    answer = check.assess(check_images)
    scores = loaded.classify(model_images)
    why = reasons(answer.labels, scores.in_domain, len(model_images))
    n = len(why)
    gate = 0 if scores.in_domain is None else int((~scores.in_domain).sum())
    return {"images": n, "modality": float((~answer.accepted).mean()),
            "gate": gate / n, "refused": sum(bool(w) for w in why) / n,
            "as_clinical": sum(lab == "clinical" for lab in answer.labels),
            "as_other": sum(lab == "other" for lab in answer.labels)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="default: the bundled model")
    parser.add_argument("--extra", type=Path, nargs="*", default=[],
                        help="folders of other images, dermoscopic or not")
    parser.add_argument("--check", type=Path, default=None,
                        help="a modality check's .keras file (default: the shipped one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from core import negatives
    from core.dataset import IMAGE_SUFFIXES, load_dataset
    from core.images import load_images, read_image
    from core.inference import resolve_model
    from core.modality import ModalityCheck, default_check
    from core.splits import split_lesion

    loaded = resolve_model(args.model, "auto")
    check = default_check() if args.check is None else ModalityCheck(args.check)
    size, crop = loaded.info.image_size, loaded.info.crop
    rows: list[dict[str, Any]] = []

    def add(name: str, files: list[Path], target: str = "") -> None:
        if files:
            model_images = np.stack([read_image(p, size, crop) for p in files])
            check_images = np.stack([read_image(p, check.size, check.crop) for p in files])
            rows.append({"set": name, **verdicts(loaded, check, model_images, check_images),
                         "target": target})

    def held_out(folder: str) -> list[Path]:
        return [p for p in sorted((SHARED / folder).glob("*.jpg"))
                if negatives.folder_part(p.name) == "test"]

    add("clinical photos of skin (held out)", held_out("clinical-photos"), "refused >= 0.90")
    add("ordinary photos (held out)", held_out("ood-photos"), "refused >= 0.98")
    for k, kind in enumerate(negatives.KINDS):
        made = negatives.make(kind, 30, 224, seed=TEST_SEED + k)
        medical = kind.startswith(("histology", "grey scan", "fundus"))
        rows.append({"set": f"synthetic: {kind}",
                     **verdicts(loaded, check, resized(made, size), resized(made, check.size)),
                     "target": "refused >= 0.95" if medical else "refused >= 0.98"})
    add("app icon", [ROOT / "resources" / "icons" / "app.png"], "refused")
    for folder in args.extra:
        add(f"extra: {folder.name}", sorted(p for p in folder.rglob("*")
                                             if p.suffix.lower() in IMAGE_SUFFIXES))
    if (SHARED_HAM / "HAM10000_metadata.csv").is_file():
        dataset = load_dataset(SHARED_HAM)
        test = split_lesion(dataset.records, seed=42).to_numpy() == "test"
        dataset.records = dataset.records[test].reset_index(drop=True)
        model_images = load_images(dataset, size, crop).images
        check_images = load_images(dataset, check.size, check.crop).images
        rows.append({"set": "HAM10000 test part (lesion split)",
                     **verdicts(loaded, check, model_images, check_images),
                     "target": "as few as possible"})
    sample = SHARED / "ham10000-fullres-sample" / "images"
    add("HAM10000 600x450 originals (150)", sorted(sample.glob("*.jpg")), "as few as possible")
    add("PH2 (another clinic, dermoscopic)", sorted((SHARED / "ph2" / "images").glob("*.jpg")),
        "refused <= 0.03")
    if args.json:
        print(json.dumps({"model": loaded.path.name, "modality_check": check.settings,
                          "rows": rows}, indent=2))
    else:
        print(f"model: {loaded.path.name}; modality check: {check.path.name} "
              f"({check.size} px, threshold {check.threshold:.3f}, {check.runtime})")
        print_table(rows, [("set", "set", "s"), ("images", "images", "d"),
                           ("modality", "modality check", ".3f"), ("gate", "model gate", ".3f"),
                           ("refused", "refused (either)", ".3f"),
                           ("as_clinical", "as clinical", "d"), ("target", "target", "s")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
