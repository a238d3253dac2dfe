"""The out-of-distribution gate: is an image like the ones a model was trained on?

Two class-conditional Mahalanobis distances (Lee et al., NeurIPS 2018), each with a shared
within-class covariance (Ledoit-Wolf shrinkage) and the distance to the nearest class mean:

* on the model's penultimate features: it separates ordinary photos from dermoscopic images;
* on four texture statistics of the pixels: a flat colour, a smooth gradient or a page of
  text gives deep features close to the training mean, yet no dermoscopic image is that
  smooth (or that sharp).

Each distance is divided by its own threshold, set on held-out (validation) images, and the
larger of the two is the image's `domain_score`: above 1.0 the image is refused.

Everything is arrays and numbers, stored inside the `.keras` file as an `.npz` member read
with `allow_pickle=False`: the file still loads in Keras' safe mode.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import ModelError

MAX_EXACT = 2048  # features up to this size keep every direction (they separate photos best)
REDUCED = 1024  # larger features (VGG16's flattened maps) are first reduced by PCA
DEEP_QUANTILE, DEEP_MARGIN = 0.99, 1.05
TEXTURE_QUANTILE, TEXTURE_MARGIN = 0.999, 1.5  # a coarse check: only extremes are refused
PARTS = ("deep", "texture")


@dataclass
class Mahalanobis:
    """Distance to the nearest class mean in a whitened space, with its threshold."""

    mean: np.ndarray  # (d,)
    components: np.ndarray  # (d, k) whitening projection
    class_means: np.ndarray  # (c, k)
    threshold: float = float("inf")

    def distance(self, x: np.ndarray) -> np.ndarray:
        """Root mean squared whitened distance to the nearest class mean, per row."""
        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        if x.shape[1] != self.mean.shape[0]:
            raise ModelError(f"the domain model expects {self.mean.shape[0]} features, "
                             f"got {x.shape[1]}")
        z = (x - self.mean) @ self.components
        squared = np.full(len(x), np.inf)
        for centre in self.class_means:  # a loop keeps memory at (n, k)
            squared = np.minimum(squared, ((z - centre) ** 2).sum(axis=1))
        return np.sqrt(squared / self.components.shape[1])

    def calibrate(self, held_out: np.ndarray, quantile: float, margin: float) -> None:
        """Threshold = `margin` x the `quantile` of the held-out distances."""
        distances = self.distance(held_out)
        # a degenerate fit (identical held-out features) must not divide by zero later
        self.threshold = max(float(np.quantile(distances, quantile) * margin), 1e-9)


def fit_mahalanobis(x: np.ndarray, labels: np.ndarray) -> Mahalanobis:
    """Fit on training rows `x` (n, d) with class indices `labels`."""
    from sklearn.covariance import ledoit_wolf

    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    labels = np.asarray(labels)
    classes = np.unique(labels)
    centres = np.stack([x[labels == c].mean(axis=0) for c in classes])
    residuals = x - centres[np.searchsorted(classes, labels)]
    if x.shape[1] > MAX_EXACT:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=min(REDUCED, len(x) - 1), svd_solver="randomized",
                  random_state=0).fit(residuals)
        vectors, values = pca.components_.T, pca.explained_variance_
    else:
        covariance, _ = ledoit_wolf(residuals, assume_centered=True)
        values, vectors = np.linalg.eigh(covariance)
    values = np.maximum(values, 1e-6 * max(float(values.max()), 1e-12))
    components = vectors / np.sqrt(values)
    mean = x.mean(axis=0)
    return Mahalanobis(mean.astype(np.float32), components.astype(np.float32),
                       ((centres - mean) @ components).astype(np.float32))


def texture_statistics(images: np.ndarray, chunk: int = 32) -> np.ndarray:
    """Four texture figures per uint8 image (n, h, w, 3): log local contrast per channel
    (mean absolute difference of neighbouring pixels) and the log spread of red.

    In chunks of 32 images: float copies of 256 at 160 px took ~200 MB, the whole memory
    budget of a classification-only process."""
    out = np.zeros((len(images), 4), dtype=np.float32)
    for start in range(0, len(images), chunk):
        x = np.asarray(images[start:start + chunk], dtype=np.float32) / 255.0
        dx = np.abs(np.diff(x, axis=2)).mean(axis=(1, 2))
        dy = np.abs(np.diff(x, axis=1)).mean(axis=(1, 2))
        out[start:start + len(x), :3] = np.log(dx + dy + 1e-3)
        out[start:start + len(x), 3] = np.log(x[..., 0].std(axis=(1, 2)) + 1e-3)
    return out


@dataclass
class DomainModel:
    """A fitted gate: `score(features, images)` and `in_domain(scores)` (score <= 1)."""

    deep: Mahalanobis
    texture: Mahalanobis
    n_train: int = 0
    deep_rule: str = f"{DEEP_MARGIN} x validation quantile {DEEP_QUANTILE}"

    @property
    def dim(self) -> int:
        """The penultimate-feature size the gate expects."""
        return int(self.deep.mean.shape[0])

    def score(self, features: np.ndarray, images: np.ndarray) -> np.ndarray:
        """Per image: the larger distance relative to its threshold; above 1.0 is refused."""
        deep = self.deep.distance(features) / self.deep.threshold
        texture = self.texture.distance(texture_statistics(images)) / self.texture.threshold
        return np.maximum(deep, texture).astype(np.float64)

    @staticmethod
    def in_domain(scores: np.ndarray) -> np.ndarray:
        """True where a score is at or below 1.0."""
        return np.asarray(scores) <= 1.0

    def calibrate(self, features: np.ndarray, images: np.ndarray,
                  shifted_features: np.ndarray | None = None) -> None:
        """Set both thresholds from held-out (validation) images, never the test part.

        `shifted_features`, the features of device-shifted views of the same images
        (`core.device_shift`), join the deep distances' quantile: without them the gate
        refused a tenth of HAM10000's validation images seen through another device's optics
        (docs/modality-check.md). The texture threshold stays on the plain images."""
        if len(features) == 0:
            raise ModelError("the domain thresholds need held-out images")
        deep = np.asarray(features)
        self.deep_rule = f"{DEEP_MARGIN} x validation quantile {DEEP_QUANTILE}"
        if shifted_features is not None and len(shifted_features):
            deep = np.concatenate([deep.reshape(len(deep), -1),
                                   np.asarray(shifted_features).reshape(len(shifted_features),
                                                                        -1)])
            self.deep_rule += ", each image also seen once through a shifted device"
        self.deep.calibrate(deep, DEEP_QUANTILE, DEEP_MARGIN)
        self.texture.calibrate(texture_statistics(images), TEXTURE_QUANTILE, TEXTURE_MARGIN)

    def params(self) -> dict[str, Any]:
        """The scalar settings (stored as JSON beside the arrays)."""
        return {"method": "class-mahalanobis (penultimate features) + texture",
                "deep_threshold": self.deep.threshold,
                "deep_rule": self.deep_rule,
                "texture_threshold": self.texture.threshold,
                "texture_rule": f"{TEXTURE_MARGIN} x validation quantile {TEXTURE_QUANTILE}",
                "features": self.dim, "n_train": self.n_train}

    def to_bytes(self) -> bytes:
        """The arrays as an `.npz` archive (no pickled objects)."""
        arrays: dict[str, np.ndarray] = {}
        for name in PARTS:
            part: Mahalanobis = getattr(self, name)
            arrays[f"{name}_mean"] = part.mean.astype(np.float32)
            arrays[f"{name}_components"] = part.components.astype(np.float32)
            arrays[f"{name}_class_means"] = part.class_means.astype(np.float32)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, params: dict[str, Any]) -> DomainModel:
        """Read what `to_bytes` and `params` wrote; raise `ModelError` if it is damaged."""
        parts = []
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                for name in PARTS:
                    mean, components, centres = (
                        np.asarray(arrays[f"{name}_{a}"], dtype=np.float32)
                        for a in ("mean", "components", "class_means"))
                    if components.ndim != 2 or components.shape[0] != mean.shape[0] or \
                            centres.ndim != 2 or centres.shape[1] != components.shape[1]:
                        raise ValueError("inconsistent shapes")
                    parts.append(Mahalanobis(mean, components, centres,
                                             float(params[f"{name}_threshold"])))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"the stored domain model is damaged: {exc}") from exc
        model = cls(parts[0], parts[1], int(params.get("n_train", 0)))
        if isinstance(params.get("deep_rule"), str):
            model.deep_rule = params["deep_rule"]
        return model


def fit_domain(features: np.ndarray, images: np.ndarray, labels: np.ndarray) -> DomainModel:
    """Fit the gate on training features (n, d), their images and class indices (n,).

    The thresholds are left open: call `calibrate` with validation features and images.
    """
    if len(features) < 3:
        raise ModelError("the domain model needs at least 3 training images")
    return DomainModel(fit_mahalanobis(features, labels),
                       fit_mahalanobis(texture_statistics(images), labels), len(features))
