"""Groups of HAM10000 images by how they look (the light, the field of view, the sharpness),
a stand-in for the devices the Kaggle metadata does not name.

`tools/train_modality.py` leaves each group out in turn: the check fitted without it
refuses some of that group's dermoscopic images, as it would refuse images from a device it
never saw (PH2's round-field frames are such a case). That figure is part of the
validation score, so a variant that holds up on unseen looks is preferred, without PH2
taking part in any choice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

LOOKS = 5
SIDE = 20  # px of the 200x150 frame: the border, where the skin and the field are


def look_of(img: Image.Image) -> np.ndarray:
    """14 numbers on how an image was taken rather than what it shows: the corners' colour
    (a round field is dark there), the border's median colour and spread, the sharpness
    (log Laplacian, mean and 99th percentile) and the mean colour."""
    a = np.asarray(img.convert("RGB").resize((200, 150), Image.Resampling.BILINEAR),
                   dtype=np.float32) / 255.0
    c = SIDE * 3 // 4
    corners = np.concatenate([a[:c, :c], a[:c, -c:], a[-c:, :c], a[-c:, -c:]]).reshape(-1, 3)
    border = np.concatenate([a[:SIDE].reshape(-1, 3), a[-SIDE:].reshape(-1, 3),
                             a[:, :SIDE].reshape(-1, 3), a[:, -SIDE:].reshape(-1, 3)])
    g = a.mean(axis=2)
    lap = np.abs(4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:])
    return np.r_[corners.mean(0), np.median(border, 0), border.std(0),
                 np.log(lap.mean() + 1e-4), np.log(np.percentile(lap, 99) + 1e-4),
                 a.mean((0, 1))]


def look_groups(images: Sequence[Image.Image], lesions: Sequence[str],
                k: int = LOOKS, seed: int = 0) -> np.ndarray:
    """A group (0..k-1) per image: k-means on the standardised `look_of` numbers; every
    image of a lesion takes the group of its first image, so no lesion is on both sides."""
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    looks = StandardScaler().fit_transform(np.stack([look_of(img) for img in images]))
    groups = KMeans(k, n_init=10, random_state=seed).fit_predict(looks)
    first: dict[str, int] = {}
    return np.array([first.setdefault(lesion, int(g)) for lesion, g in
                     zip(lesions, groups, strict=True)])
