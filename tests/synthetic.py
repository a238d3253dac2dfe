"""Small synthetic datasets the tests make themselves (never the licensed HAM10000 images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from core.classes import HAM10000_CLASSES

# One distinct colour per class, so even a tiny model can learn the task.
CLASS_COLOURS = {
    "akiec": (200, 40, 40), "bcc": (40, 200, 40), "bkl": (40, 40, 200), "df": (200, 200, 40),
    "mel": (20, 20, 20), "nv": (150, 90, 60), "vasc": (220, 100, 200),
}


def make_image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (20, 15),
               seed: int = 0) -> Path:
    """A noisy image of one colour, saved in the format the suffix says."""
    rng = np.random.default_rng(seed)
    base = np.array(colour, dtype=np.int16)
    pixels = (base + rng.integers(-20, 21, (size[1], size[0], 3))).clip(0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def make_ham(root: Path, per_class: int = 6, images_per_lesion: int = 2,
             classes: tuple[str, ...] = HAM10000_CLASSES) -> Path:
    """A HAM10000-layout folder: metadata CSV plus images split over two part folders."""
    rows = ["lesion_id,image_id,dx,dx_type,age,sex,localization"]
    n = 0
    for c in classes:
        for i in range(per_class):
            image_id = f"ISIC_{n:07d}"
            lesion = f"HAM_{c}_{i // images_per_lesion}"
            part = "HAM10000_images_part_1" if n % 2 == 0 else "HAM10000_images_part_2"
            make_image(root / part / f"{image_id}.jpg", CLASS_COLOURS[c], seed=n)
            rows.append(f"{lesion},{image_id},{c},histo,{30 + n % 50}.0,"
                        f"{'male' if n % 3 else 'female'},back")
            n += 1
    (root / "HAM10000_metadata.csv").write_text("\n".join(rows) + "\n")
    return root


def make_image_folder(root: Path, classes: tuple[str, ...] = ("benign", "malignant"),
                      per_class: int = 4) -> Path:
    """One sub-folder of PNG images per class."""
    colours = list(CLASS_COLOURS.values())
    for k, c in enumerate(classes):
        for i in range(per_class):
            make_image(root / c / f"{c}_{i}.png", colours[k], seed=k * 100 + i)
    return root


def make_isic(root: Path, per_class: int = 3) -> Path:
    """ISIC 2018 Task 3 layout: an input folder and a one-hot ground-truth CSV."""
    header = ["image"] + [c.upper() for c in ("mel", "nv", "bcc", "akiec", "bkl", "df", "vasc")]
    rows = [",".join(header)]
    n = 0
    for c in HAM10000_CLASSES:
        for _ in range(per_class):
            image_id = f"ISIC_{900000 + n:07d}"
            make_image(root / "ISIC2018_Task3_Test_Input" / f"{image_id}.jpg",
                       CLASS_COLOURS[c], seed=n)
            onehot = ["1.0" if h == c.upper() else "0.0" for h in header[1:]]
            rows.append(",".join([image_id, *onehot]))
            n += 1
    gt = root / "ISIC2018_Task3_Test_GroundTruth" / "ISIC2018_Task3_Test_GroundTruth.csv"
    gt.parent.mkdir(parents=True, exist_ok=True)
    gt.write_text("\n".join(rows) + "\n")
    return root
