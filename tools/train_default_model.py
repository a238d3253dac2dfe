"""Train the bundled default model v2: MobileNetV2 fine-tuned on cached intermediate maps.

The backbone up to block `--cut` is frozen; its output maps are computed once for each training
image's four flips plus `--jitter` randomly zoomed / colour-jittered copies, and cached on disk.
The blocks after the cut, Conv_1 and the head are then trained on those maps (one random view
per image per epoch, class-weighted). The epoch and the decision rule (4-flip TTA, an optional
per-class bias on log-probabilities) are chosen on the validation part only; PH2 is scored as
an external check. The test part is never loaded. The trained weights are copied by layer name
into a plain `core.models.build_mobilenetv2` model, which is saved and checked on raw images.

    python tools/train_default_model.py --data ../shared/datasets/ham10000 --weights $W \
        --out runs/v2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.backend import keras, tf  # noqa: E402
from core.classes import HAM10000_CLASSES  # noqa: E402
from core.dataset import load_dataset  # noqa: E402
from core.images import load_images  # noqa: E402
from core.metrics import compute_metrics  # noqa: E402
from core.model_io import ModelInfo, load_model, save_model  # noqa: E402
from core.models import build_mobilenetv2  # noqa: E402
from core.splits import class_weights, split_lesion  # noqa: E402

CLASSES = list(HAM10000_CLASSES)
MEL, NV = CLASSES.index("mel"), CLASSES.index("nv")
RESIDUAL = {2, 4, 5, 7, 8, 9, 11, 12, 14, 15}  # MobileNetV2 blocks that end in an Add
T0 = time.time()


def log(msg: str) -> None:
    """Print a progress line with the elapsed time."""
    print(f"[{time.time() - T0:7.1f}s] {msg}", flush=True)


def cut_layer(block: int) -> str:
    """Name of the layer whose output is block `block`'s output."""
    return f"block_{block}_add" if block in RESIDUAL else f"block_{block}_project_BN"


def split_backbone(model: Any, cut: int) -> tuple[Any, Any, Any]:
    """(lower, upper, trainable head model) sharing layers with `model` (a build_mobilenetv2)."""
    layers = keras().layers
    base = next(layer for layer in model.layers if layer.name.startswith("mobilenetv2"))
    cut_out = base.get_layer(cut_layer(cut)).output
    lower = keras().Model(base.input, cut_out, name="lower")
    upper = keras().Model(cut_out, base.output, name="upper")
    maps = keras().Input(tuple(cut_out.shape[1:]), name="maps")
    x = model.get_layer("features")(upper(maps))
    drop = next(layer for layer in model.layers if isinstance(layer, layers.Dropout))
    head = keras().Model(maps, model.get_layer("probabilities")(drop(x)), name="head")
    scale = model.layers[1]
    image_in = keras().Input(tuple(model.input.shape[1:]))
    lower_full = keras().Model(image_in, lower(scale(image_in)), name="lower_full")
    return lower_full, upper, head


def opened(name: str, first: int) -> bool:
    """Whether backbone layer `name` belongs to block `first` or later (Conv_1 included)."""
    if name.startswith("block_"):
        return int(name.split("_")[1]) >= first
    return not name.startswith(("input", "Conv1", "bn_Conv1", "expanded_conv"))


def set_trainable(upper: Any, fine_tune: bool, first: int) -> None:
    """Open blocks >= `first` (batch norm stays frozen), or only the dense head."""
    upper.trainable = fine_tune
    for layer in upper.layers:
        layer.trainable = (fine_tune and opened(layer.name, first)
                           and not isinstance(layer, keras().layers.BatchNormalization))


def flips(images: np.ndarray) -> list[np.ndarray]:
    """The four flips that `predict(tta=True)` averages, in its order."""
    return [images, images[:, :, ::-1], images[:, ::-1], images[:, ::-1, ::-1]]


def jitter(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random zoom crop (70-100% side), colour jitter, flips and 90-degree turns; float32."""
    n, size = len(images), images.shape[1]
    s = rng.uniform(0.7, 1.0, n)
    y0, x0 = rng.uniform(0, 1, n) * (1 - s), rng.uniform(0, 1, n) * (1 - s)
    boxes = np.stack([y0, x0, y0 + s, x0 + s], axis=1).astype(np.float32)
    x = tf().image.crop_and_resize(images.astype(np.float32), boxes, np.arange(n, dtype=np.int32),
                                   (size, size)).numpy() / 255.0
    shape = (n, 1, 1, 1)
    x = x + rng.uniform(-0.1, 0.1, shape)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    x = (x - mean) * rng.uniform(0.8, 1.2, shape) + mean
    gray = x.mean(axis=3, keepdims=True)
    x = (x - gray) * rng.uniform(0.8, 1.2, shape) + gray
    x = x * rng.uniform(0.9, 1.1, (n, 1, 1, 3))
    x = np.clip(x, 0, 1) * 255.0
    for i in range(n):
        if rng.random() < 0.5:
            x[i] = x[i, :, ::-1]
        if rng.random() < 0.5:
            x[i] = x[i, ::-1]
        if rng.random() < 0.5:
            x[i] = x[i].transpose(1, 0, 2)
    return x.astype(np.float32)


def encode(lower: Any, images: np.ndarray, batch: int = 128) -> np.ndarray:
    """Frozen lower-backbone maps (float16) for raw 0-255 images."""
    call = tf().function(lambda x: lower(x, training=False), reduce_retracing=True)
    parts = [np.asarray(call(np.ascontiguousarray(images[i:i + batch], np.float32)),
                        dtype=np.float16) for i in range(0, len(images), batch)]
    return np.concatenate(parts)


def cached_views(lower: Any, images: np.ndarray, n_jitter: int, seed: int, key: str,
                 cache: Path) -> np.ndarray:
    """(4 + n_jitter, n, h, w, c) maps: the four flips then jittered copies, disk-cached."""
    path = cache / f"{key}.npy"
    if path.exists():
        log(f"maps from cache {path.name}")
        return np.load(path, mmap_mode=None)
    rng = np.random.default_rng(seed)
    views = [encode(lower, v) for v in flips(images)]
    for j in range(n_jitter):
        chunks = [encode(lower, jitter(images[i:i + 512], rng))
                  for i in range(0, len(images), 512)]
        views.append(np.concatenate(chunks))
        log(f"  jittered view {j + 1}/{n_jitter}")
    out = np.stack(views)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def predict_views(head: Any, views: np.ndarray, tta: bool) -> np.ndarray:
    """Mean probabilities over the four flip views (or the first view only)."""
    call = tf().function(lambda x: head(x, training=False), reduce_retracing=True)
    used = views[:4] if tta else views[:1]
    out = [np.concatenate([np.asarray(call(np.asarray(v[i:i + 256], np.float32)))
                           for i in range(0, len(v), 256)]) for v in used]
    return np.mean(out, axis=0)


def adjust(proba: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """softmax(log p + b)."""
    if bias is None:
        return proba
    z = np.log(np.clip(proba, 1e-12, 1)) + bias
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def balanced(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean recall over the classes present in y."""
    pred = proba.argmax(axis=1)
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def tune_bias(y: np.ndarray, proba: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Per-class log-probability bias maximising balanced accuracy (coordinate ascent)."""
    bias = np.zeros(proba.shape[1])
    grid = np.round(np.arange(-2.0, 2.01, 0.1), 2)
    logp = np.log(np.clip(proba, 1e-12, 1))
    for _ in range(rounds):
        for c in range(proba.shape[1]):
            if c == NV:
                continue  # nv is the reference class
            scores = []
            for g in grid:
                b = bias.copy()
                b[c] = g
                scores.append(balanced(y, logp + b) - 1e-4 * abs(g))
            bias[c] = grid[int(np.argmax(scores))]
    return bias


def crossfit_bias(y: np.ndarray, proba: np.ndarray, groups: np.ndarray, seed: int) -> float:
    """Honest val balanced accuracy of the tuned bias: tune on half the lesions, score the other."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    half = set(rng.permutation(uniq)[: len(uniq) // 2])
    fold = np.array([g in half for g in groups])
    pred = np.zeros(len(y), dtype=int)
    for mask in (fold, ~fold):
        b = tune_bias(y[~mask], proba[~mask])
        pred[mask] = adjust(proba[mask], b).argmax(axis=1)
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def summary(y: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """The four headline figures."""
    m = compute_metrics(y, proba, CLASSES)
    return {"balanced_accuracy": round(m["balanced_accuracy"], 4),
            "melanoma_recall": round(m["melanoma_recall"], 4),
            "nevus_recall": round(m["per_class"]["nv"]["recall"], 4),
            "macro_auc": None if m["macro_auc"] is None else round(m["macro_auc"], 4)}


def load_ph2(path: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """PH2 images (centre crop) and their HAM class indices."""
    ds = load_dataset(path)
    images = load_images(ds, size, "center").images
    return images, ds.records["dx"].map(CLASSES.index).to_numpy()


def copy_weights(source: Any, target: Any) -> None:
    """Copy every weight by layer name, into the nested backbone too."""
    for layer in target.layers:
        if not layer.weights:
            continue
        if hasattr(layer, "layers"):
            copy_weights(next(x for x in source.layers if hasattr(x, "layers")), layer)
        else:
            layer.set_weights(source.get_layer(layer.name).get_weights())


def train(head: Any, upper: Any, model: Any, train_maps: np.ndarray, y_train: np.ndarray,
          val_maps: np.ndarray, y_val: np.ndarray, args: argparse.Namespace) -> list[dict]:
    """Head-only epochs, then fine-tuning; keeps the best epoch by val balanced accuracy (TTA)."""
    rng = np.random.default_rng(args.seed)
    cw = class_weights(y_train, len(CLASSES))
    sw = np.array([cw[int(c)] for c in y_train]) ** args.cw_power
    onehot = np.eye(len(CLASSES), dtype=np.float32)[y_train]
    loss = keras().losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing)
    history, best, best_weights = [], -1.0, None
    total = args.head_epochs + args.epochs
    steps = args.epochs * int(np.ceil(len(y_train) / args.batch))
    for epoch in range(total):
        fine = epoch >= args.head_epochs
        if epoch in (0, args.head_epochs):
            set_trainable(upper, fine, args.open or args.cut + 1)
            lr = (keras().optimizers.schedules.CosineDecay(args.lr, steps, alpha=0.05)
                  if fine else 1e-3)
            head.compile(keras().optimizers.Adam(lr, clipnorm=1.0), loss, jit_compile=False)
        view = rng.integers(0, len(train_maps), len(y_train))
        if epoch < args.head_epochs:
            view = rng.integers(0, 4, len(y_train))
        order = rng.permutation(len(y_train))
        x = train_maps[view[order], order]
        t = time.time()
        fit = head.fit(x, onehot[order], sample_weight=sw[order], batch_size=args.batch,
                       epochs=1, verbose=0, shuffle=False)
        ba = balanced(y_val, predict_views(head, val_maps, True))
        row = {"epoch": epoch + 1, "phase": "fine" if fine else "head",
               "loss": round(float(fit.history["loss"][-1]), 4), "val_ba_tta": round(ba, 4),
               "seconds": round(time.time() - t, 1)}
        history.append(row)
        log(f"epoch {row} trainable={len(head.trainable_weights)}")
        if ba > best and (fine or args.epochs == 0):
            best, best_weights = ba, [w.numpy().copy() for w in head.weights]
    if best_weights is not None:
        for w, value in zip(head.weights, best_weights, strict=True):
            w.assign(value)
    return history


def main() -> None:
    """Parse arguments, train, choose the recipe on val, save and verify the model."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="HAM10000 folder (Kaggle layout)")
    p.add_argument("--ph2", type=Path, default=Path("../shared/datasets/ph2"))
    p.add_argument("--weights", type=Path, required=True, help="MobileNetV2 no-top weights")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache", type=Path, default=Path("runs/cache"))
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--cut", type=int, default=9, help="freeze blocks up to this one")
    p.add_argument("--open", type=int, default=0, help="first trained block (default cut+1)")
    p.add_argument("--jitter", type=int, default=4, help="jittered copies per training image")
    p.add_argument("--head-epochs", type=int, default=3)
    p.add_argument("--epochs", type=int, default=12, help="fine-tuning epochs")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--cw-power", type=float, default=1.0, help="class weight exponent")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--load-trained", type=Path, help="skip training: a trained.weights.h5")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    keras().utils.set_random_seed(args.seed)
    times: dict[str, float] = {}

    t = time.time()
    ds = load_dataset(args.data)
    subset = split_lesion(ds.records, seed=42)
    split = ds.records[["image_id", "lesion_id", "dx"]].assign(subset=subset.to_numpy())
    split.to_csv(args.out / "split.csv", index=False)
    images = load_images(ds, args.size, "center").images
    y = ds.records["dx"].map(CLASSES.index).to_numpy()
    tr, va = (subset == "train").to_numpy(), (subset == "val").to_numpy()
    ph2_images, y_ph2 = load_ph2(args.ph2, args.size)
    times["load_images"] = time.time() - t
    log(f"{tr.sum()} train, {va.sum()} val, {len(y_ph2)} PH2 images (test part not loaded)")

    t = time.time()
    model = build_mobilenetv2(args.size, len(CLASSES), weights=str(args.weights))
    lower, upper, head = split_backbone(model, args.cut)
    digest = hashlib.sha1(args.weights.read_bytes()).hexdigest()[:8]
    key = f"{args.size}px-cut{args.cut}-{digest}"
    train_maps = cached_views(lower, images[tr], args.jitter, args.seed,
                              f"train-{key}-j{args.jitter}-s{args.seed}", args.cache)
    val_maps = cached_views(lower, images[va], 0, 0, f"val-{key}", args.cache)
    ph2_maps = cached_views(lower, ph2_images, 0, 0, f"ph2-{key}", args.cache)
    times["encode_maps"] = time.time() - t
    log(f"maps {train_maps.shape} ({train_maps.nbytes / 2**30:.2f} GiB)")

    t = time.time()
    if args.load_trained:
        model.load_weights(args.load_trained)
        history = json.loads((args.load_trained.parent / "history.json").read_text())
    else:
        history = train(head, upper, model, train_maps, y[tr], val_maps, y[va], args)
        model.save_weights(args.out / "trained.weights.h5")
        (args.out / "history.json").write_text(json.dumps(history))
    times["train"] = time.time() - t

    t = time.time()
    groups = ds.records["lesion_id"].to_numpy()[va]
    proba = {tta: predict_views(head, val_maps, tta) for tta in (False, True)}
    ph2_proba = {tta: predict_views(head, ph2_maps, tta) for tta in (False, True)}
    tta = balanced(y[va], proba[True]) >= balanced(y[va], proba[False])
    bias = tune_bias(y[va], proba[tta])
    crossfit = crossfit_bias(y[va], proba[tta], groups, args.seed)
    use_bias = crossfit > balanced(y[va], proba[tta]) + 0.005
    chosen = bias if use_bias else None
    results: dict[str, Any] = {
        "recipe": {"tta": bool(tta), "class_bias": None if chosen is None
                   else [round(float(b), 2) for b in chosen]},
        "tuned_bias": [round(float(b), 2) for b in bias],
        "val_crossfit_balanced_accuracy_with_bias": round(crossfit, 4),
        "args": {k: str(v) for k, v in vars(args).items()}, "history": history,
        "validation": {"plain": summary(y[va], proba[False]), "tta": summary(y[va], proba[True]),
                       "tta_bias": summary(y[va], adjust(proba[True], bias)),
                       "recipe": summary(y[va], adjust(proba[tta], chosen))},
        "ph2": {"plain": summary(y_ph2, ph2_proba[False]),
                "tta": summary(y_ph2, ph2_proba[True]),
                "tta_bias": summary(y_ph2, adjust(ph2_proba[True], bias)),
                "recipe": summary(y_ph2, adjust(ph2_proba[tta], chosen))},
    }
    times["choose_recipe"] = time.time() - t

    t = time.time()
    final = build_mobilenetv2(args.size, len(CLASSES), weights=None)
    copy_weights(model, final)
    info = ModelInfo(classes=CLASSES, image_size=args.size, crop="center",
                     architecture="mobilenetv2",
                     trained_on={"data": args.data.name, "split": "lesion", "seed": 42,
                                 "images": int(tr.sum()), "balance": "class-weights",
                                 "recipe": results["recipe"]})
    save_model(final, args.out / "model.keras", info)
    loaded = load_model(args.out / "model.keras")
    raw = adjust(loaded.predict(images[va], tta=tta), chosen)
    results["check_raw_model_val"] = summary(y[va], raw)
    results["ph2_raw_model"] = summary(y_ph2, adjust(loaded.predict(ph2_images, tta=tta), chosen))
    gap = abs(results["check_raw_model_val"]["balanced_accuracy"]
              - results["validation"]["recipe"]["balanced_accuracy"])
    results["check_gap"] = round(gap, 4)
    one = images[va][:1]
    loaded.predict(one, tta=tta)
    t1 = time.time()
    for _ in range(10):
        loaded.predict(one, tta=tta)
    results["ms_per_image"] = round((time.time() - t1) * 100, 1)
    times["save_and_check"] = time.time() - t
    results["seconds"] = {k: round(v, 1) for k, v in times.items()}
    results["total_seconds"] = round(time.time() - T0, 1)
    results["model_mb"] = round((args.out / "model.keras").stat().st_size / 2**20, 1)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    log(json.dumps({k: results[k] for k in ("recipe", "validation", "ph2", "check_gap",
                                           "ms_per_image", "seconds")}))
    if gap > 0.005:
        log(f"WARNING: raw-model val balanced accuracy differs by {gap:.4f}")


if __name__ == "__main__":
    main()
