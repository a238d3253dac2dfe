"""Average two or more trained models inside one Keras model file (e.g. the bundled default).

    python tools/make_ensemble.py runs/v2/model.keras resources/models/v1.keras \\
        --out runs/ensemble/model.keras

The first model sets the input size and crop policy; the others are resized inside the
model. An ensemble given as an input contributes its members, each with an equal weight
(v3 = `make_ensemble.py runs/v3/model.keras v2.keras`: Lite0 and v2's two members, 1/3
each). The result has no gate yet and flip TTA on: package it with `tools/package_model.py
--data ... --split ...` to fit the gate and temperature on its training split.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.ensemble import build_ensemble, members  # noqa: E402
from core.model_io import ModelInfo, load_model, save_model  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+",
                        help="model files; the first one's features feed the gate")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-tta", action="store_true", help="do not store flip TTA")
    args = parser.parse_args()
    loaded = [load_model(p) for p in args.models]
    first = loaded[0].info
    crops = {m.info.crop for m in loaded}
    if len(crops) > 1 or any(m.info.classes != first.classes for m in loaded):
        parser.error("the models must share their classes and crop policy")
    model = build_ensemble([part for m in loaded for part in (members(m.model) or [m.model])])
    size = int(model.input_shape[1])
    parts = " + ".join(f"{m.info.architecture}@{m.info.image_size}px" for m in loaded)
    info = ModelInfo(classes=first.classes, image_size=size, crop=first.crop,
                     architecture=f"ensemble: {parts}", trained_on=first.trained_on,
                     tta=not args.no_tta)
    out = save_model(model, args.out, info)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {parts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
