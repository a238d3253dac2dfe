"""Turn a run's model into a shippable file with its model card (e.g. the bundled default).

    python tools/package_model.py RUN_DIR/model.keras --card docs/model-card.md \\
        --data ../shared/datasets/ham10000 --split RUN_DIR/split.csv \\
        --out resources/models/default.keras

The optimizer state is dropped (the file holds only what prediction needs) and the Markdown
card is stored inside the file, where the app's Models view shows it. With `--data` and
`--split`, the out-of-distribution gate is fitted on the split's training part (thresholds
on its validation part), the temperature on its validation part, and the training part's
image ids are stored; the test part is never read. The gate's deep threshold also counts a
device-shifted view of each validation image (`--no-device-shift`: only the plain ones).
`--tta` and `--class-bias` set the stored inference recipe before anything is fitted;
`--keep-fit` keeps what the model already has (to change only the card). `--int8 N` also
builds the int8 LiteRT twin, calibrated on N images of the training part
(`bench/int8_twin.py` then says how far it agrees with the float twin).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.model_io import LoadedModel, load_model, save_model  # noqa: E402

if TYPE_CHECKING:
    import numpy as np

MAX_MB = 50


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a run's model.keras")
    parser.add_argument("--card", type=Path, required=True, help="Markdown model card")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, help="the dataset the model was trained on")
    parser.add_argument("--split", type=Path, help="the run's split.csv (image_id, subset)")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                        help="store flip TTA in the recipe (default: keep the model's)")
    parser.add_argument("--metrics", type=Path, default=None, metavar="EVALUATE.json",
                        help="store the headline figures of `main.py evaluate --json` output "
                        "(the test part's), shown in the Models view")
    parser.add_argument("--class-bias", type=str, default=None, metavar="JSON",
                        help="per-class log-probability offsets, e.g. '[0,0,0,0,0.5,0,0]'")
    parser.add_argument("--int8", type=int, default=0, metavar="N",
                        help="also build the int8 twin, calibrated on N training images "
                        "(needs --data and --split)")
    parser.add_argument("--device-shift", action=argparse.BooleanOptionalAction, default=True,
                        help="the gate's deep threshold also counts a device-shifted view of "
                        "each validation image (default: on)")
    parser.add_argument("--keep-fit", action="store_true",
                        help="keep the model's gate, temperature and training ids (e.g. to "
                        "change only the card); --data and --split then serve --int8 only")
    args = parser.parse_args()
    if args.int8 and not (args.data and args.split):
        parser.error("--int8 needs --data and --split (it calibrates on training images)")
    loaded = load_model(args.model)
    loaded.info.card = args.card.read_text(encoding="utf-8")
    if args.tta is not None:
        loaded.info.tta = args.tta
    if args.class_bias is not None:
        loaded.info.class_bias = [float(v) for v in json.loads(args.class_bias)]
    if args.metrics is not None:
        figures = json.loads(args.metrics.read_text(encoding="utf-8"))
        loaded.info.metrics = {k: figures.get(k) for k in (
            "balanced_accuracy", "macro_auc", "melanoma_recall", "accuracy", "ece")}
    trained = dict(loaded.info.trained_on)  # a shipped file names no machine's folders
    if trained.get("data"):
        trained["data"] = Path(str(trained["data"]).replace("\\", "/")).name
    if args.data:
        from core.dataset import load_dataset

        trained["fingerprint"] = load_dataset(args.data).portable_fingerprint()
    loaded.info.trained_on = trained
    domain, ids = loaded.domain, loaded.training_ids
    if args.data and args.split and not args.keep_fit:
        import pandas as pd

        from core.trust import refit_for_shipping

        split = pd.read_csv(args.split, dtype=str, keep_default_na=False)
        fit, train_ids = refit_for_shipping(loaded, args.data, split,
                                            device_shift=args.device_shift,
                                            status=lambda m: print(m, flush=True))
        domain, ids = fit.domain, train_ids
        loaded.info.temperature = fit.temperature.used
        print(json.dumps({"gate": domain.params(), "val_rejected": fit.val_rejected,
                          "temperature_fitted": fit.temperature.fitted,
                          "temperature_used": fit.temperature.used,
                          "val_ece_before": fit.temperature.ece_before,
                          "val_ece_after": fit.temperature.ece_after}, indent=2))
    out = save_model(loaded.model, args.out, loaded.info, domain, ids)
    size_mb = out.stat().st_size / 1e6
    print(f"wrote {out} ({size_mb:.1f} MB)")
    if size_mb > MAX_MB:
        print(f"too large: the bundled model must stay under {MAX_MB} MB", file=sys.stderr)
        return 1
    from core.twin import build_twin

    twin = build_twin(load_model(out), status=lambda m: print(m, flush=True))
    print(f"wrote {twin} ({twin.stat().st_size / 1e6:.1f} MB), the LiteRT twin")
    if args.int8:
        images = training_images(args.data, args.split, load_model(out), args.int8)
        int8 = build_twin(load_model(out), status=lambda m: print(m, flush=True),
                          calibration=images)
        print(f"wrote {int8} ({int8.stat().st_size / 1e6:.1f} MB), the int8 twin, "
              f"calibrated on {len(images)} training images")
    return 0


def training_images(data: Path, split: Path, loaded: LoadedModel, count: int) -> np.ndarray:
    """`count` training-part images of `data` (a fixed, class-stratified draw), as the model
    sees them."""
    import numpy as np
    import pandas as pd

    from core.dataset import load_dataset
    from core.images import load_images

    parts = pd.read_csv(split, dtype=str, keep_default_na=False)
    train = set(parts.loc[parts["subset"] == "train", "image_id"])
    dataset = load_dataset(data)
    images = load_images(dataset, loaded.info.image_size, loaded.info.crop).images
    records = dataset.records.reset_index(drop=True)
    rows = records[records["image_id"].isin(train)]
    share = max(1, count // records["dx"].nunique())
    picked = pd.concat(group.sample(min(len(group), share), random_state=0)
                       for _, group in rows.groupby("dx"))
    rest = rows.drop(picked.index).sample(max(0, count - len(picked)), random_state=0)
    return np.asarray(images[np.sort(np.concatenate([picked.index, rest.index]))])


if __name__ == "__main__":
    raise SystemExit(main())
