"""Similar cases: the training images nearest to an image in its model's feature space.

The feature space is the familiarity gate's (`Classifier.features`: the penultimate
features; an ensemble's first member). An index holds, per training image, its id, its
diagnosis and its features, PCA-reduced to at most `DIMS` dimensions, stored as float16 and
L2-normalised: a query's similarity to each is the cosine of the angle between them.

An index lives beside its model (`X.keras` -> `X.similar.npz`), an `.npz` read with
`allow_pickle=False`, and records the SHA-256 of the model file it was built from; an index
for another model is never used. The bundled model's ships (`tools/build_similar_index.py`);
a training run's is built from the run's training part on first request and cached in the
run folder. No index holds a path: image ids only; paths come from a dataset folder at
query time (`data_dir`), so thumbnails can be shown where the images are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from core import paths
from core.classes import short_name
from core.errors import DatasetError, ImageError, ModelError
from core.model_io import Classifier

FORMAT = 1
DIMS = 128  # PCA dimensions kept (1280 of EfficientNet-Lite0 -> 128: 1.8 MB for 7152 images)
CHUNK = 256  # training images decoded and featurised at a time
SUFFIX = ".similar.npz"
Progress = Callable[[int, int], None]


class SimilarCase(NamedTuple):
    """One training image near the query: its id, diagnosis, cosine similarity, path."""

    image_id: str
    dx: str
    similarity: float
    path: str | None


class StaleIndexError(ModelError):
    """The index was built for another model file (or by another format)."""


@dataclass
class SimilarIndex:
    """Training images' ids, diagnoses and reduced, normalised features."""

    model_sha256: str
    image_ids: np.ndarray  # (n,) str
    dx: np.ndarray  # (n,) str
    vectors: np.ndarray  # (n, d) float16, unit length
    mean: np.ndarray  # (D,) float32: the training features' mean
    components: np.ndarray  # (D, d) float32: the PCA projection
    source: str = ""  # where the images come from, in words
    data_dir: str | None = None  # a run's data folder (never stored in the file)

    def __len__(self) -> int:
        return len(self.image_ids)

    def project(self, features: np.ndarray) -> np.ndarray:
        """Features (m, D) as unit vectors (m, d) in the index's reduced space."""
        x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
        if x.shape[1] != self.mean.shape[0]:
            raise ModelError(f"the similar-cases index expects {self.mean.shape[0]} "
                             f"features, the model gives {x.shape[1]}")
        z = (x - self.mean) @ self.components
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)

    def nearest(self, features: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Per query row: the `k` most similar (row, cosine similarity), best first."""
        # renormalised after float16 rounding: an image's similarity to itself stays 1 - 1e-8,
        # above a near-duplicate's (without it, rounding alone moved scores by about 1e-4)
        stored = self.vectors.astype(np.float32)
        stored /= np.maximum(np.linalg.norm(stored, axis=1, keepdims=True), 1e-12)
        sims = np.clip(self.project(features) @ stored.T, -1.0, 1.0)
        k = min(k, len(self))
        out = []
        for row in sims:
            top = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
            top = top[np.argsort(-row[top], kind="stable")]
            out.append([(int(i), float(row[i])) for i in top])
        return out

    def save(self, target: Path) -> None:
        """Write the index atomically (`core.paths.atomic_path`)."""
        with paths.atomic_path(target) as tmp, open(tmp, "wb") as stream:
            np.savez_compressed(stream, format=np.array(FORMAT),
                                model_sha256=np.array(self.model_sha256),
                                image_ids=self.image_ids.astype(str),
                                dx=self.dx.astype(str),
                                vectors=self.vectors.astype(np.float16),
                                mean=self.mean.astype(np.float32),
                                components=self.components.astype(np.float32),
                                source=np.array(self.source))


def load_index(path: Path, model_sha256: str | None = None) -> SimilarIndex:
    """Read an index; `StaleIndexError` when it was built for another model than the one
    with `model_sha256`, `ModelError` when it is damaged."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["format"]) != FORMAT:
                raise StaleIndexError(f"{path.name} was made by another version of the app")
            index = SimilarIndex(str(data["model_sha256"]), data["image_ids"].astype(str),
                                 data["dx"].astype(str), data["vectors"].astype(np.float16),
                                 data["mean"].astype(np.float32),
                                 data["components"].astype(np.float32), str(data["source"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path.name} is not a readable similar-cases index: {exc}") from exc
    n, d = index.vectors.shape if index.vectors.ndim == 2 else (-1, -1)
    if n != len(index.image_ids) or n != len(index.dx) \
            or index.components.shape != (index.mean.shape[0], d):
        raise ModelError(f"{path.name} is damaged: inconsistent shapes")
    if model_sha256 is not None and index.model_sha256 != model_sha256:
        raise StaleIndexError(
            f"{path.name} was built for another model (SHA-256 {index.model_sha256[:12]}…, "
            f"this model is {model_sha256[:12]}…), so it is not used")
    return index


def fit_index(features: np.ndarray, image_ids: Sequence[str], dx: Sequence[str],
              model_sha256: str, source: str = "", dims: int = DIMS) -> SimilarIndex:
    """An index of training `features` (n, D): centred, PCA to `dims`, unit length."""
    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    if len(x) == 0:
        raise ModelError("a similar-cases index needs at least one training image")
    mean = x.mean(axis=0)
    if x.shape[1] <= dims:
        components = np.eye(x.shape[1])
    else:
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        components = vt[:min(dims, len(vt))].T
    index = SimilarIndex(model_sha256, np.asarray(image_ids, dtype=str),
                         np.asarray(dx, dtype=str), np.zeros((0, 0), np.float16),
                         mean.astype(np.float32), components.astype(np.float32), source)
    index.vectors = index.project(x).astype(np.float16)
    return index


def training_features(model: Classifier, files: Sequence[str], *,
                      on_progress: Progress | None = None,
                      should_stop: Callable[[], bool] | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(features of the readable files, a mask of which were readable), in chunks."""
    from core.images import iter_decoded

    size, crop = model.info.image_size, model.info.crop
    parts, readable = [], np.ones(len(files), dtype=bool)
    failures: dict[int, str] = {}
    # the threads decode the next chunk while the model reads this one
    for start, images in iter_decoded(list(files), size, crop, failures, chunk=CHUNK,
                                      should_stop=should_stop):
        keep = np.array([start + i not in failures for i in range(len(images))], dtype=bool)
        readable[start:start + len(images)] = keep
        if keep.any():
            parts.append(model.features(images[keep]))
        if on_progress:
            on_progress(start + len(images), len(files))
    features = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
    return features, readable


def build_index(model: Classifier, data_dir: str | Path, image_ids: Sequence[str], *,
                source: str = "", on_progress: Progress | None = None,
                should_stop: Callable[[], bool] | None = None) -> SimilarIndex:
    """The index of the images `image_ids` of the dataset in `data_dir`, through `model`."""
    from core.dataset import load_dataset

    records = load_dataset(data_dir).records
    rows = records[records["image_id"].isin(set(image_ids))].drop_duplicates("image_id")
    if rows.empty:
        raise DatasetError(f"none of the model's training images are in {data_dir}")
    features, readable = training_features(model, list(rows["path"]),
                                           on_progress=on_progress, should_stop=should_stop)
    rows = rows[readable]
    return fit_index(features, list(rows["image_id"]), list(rows["dx"]),
                     model_sha(model.path), source)


# ----- which index a model has ----------------------------------------------------------------
_lock = threading.Lock()
_shas: dict[tuple[str, int, int], str] = {}
_indexes: dict[tuple[str, str], SimilarIndex] = {}
_id_paths: dict[str, dict[str, str]] = {}


def index_path(model_path: Path) -> Path:
    """Where the index of `model_path` lives: `X.keras` -> `X.similar.npz`."""
    return model_path.with_name(model_path.stem + SUFFIX)


def model_sha(model_path: Path) -> str:
    """The SHA-256 of a model file (computed once per size and modification time)."""
    from core.twin import file_sha256

    stat = model_path.stat()
    key = (str(model_path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _shas:
        _shas[key] = file_sha256(model_path)
    return _shas[key]


def _run_training(model: Classifier) -> tuple[str, list[str]] | None:
    """(data folder, training image ids) when `model` is a training run's model."""
    from core.runs import RunFolder

    run = RunFolder(model.path.parent)
    if not (run.file(run.CONFIG).is_file() and run.file(run.SPLIT).is_file()):
        return None
    data_dir = str(run.read_config_json().get("data_dir", ""))
    if model.training_ids is not None:
        return data_dir, sorted(model.training_ids)
    split = run.read_split()
    return data_dir, sorted(set(split.loc[split["subset"] == "train", "image_id"]))


def index_for(model: Classifier, *, on_progress: Progress | None = None,
              should_stop: Callable[[], bool] | None = None,
              status: Callable[[str], None] | None = None) -> SimilarIndex:
    """The index of `model`: its file beside the model, checked against the model's hash;
    for a training run built (and cached) from its training part when missing or stale.

    Raises `ModelError` saying why a model has none (a stale index is never used).
    """
    say = status or (lambda _m: None)
    sha = model_sha(model.path)
    key = (str(model.path.resolve()), sha)
    with _lock:
        if key in _indexes:
            return _indexes[key]
        target = index_path(model.path)
        run = _run_training(model)
        index = None
        if target.is_file():
            try:
                index = load_index(target, sha)
            except ModelError as exc:
                if run is None:
                    raise ModelError(f"{exc}; rebuild it with tools/build_similar_index.py"
                                     ) from exc
                say(f"{exc}: rebuilding it")
        if index is None:
            if run is None:
                raise ModelError(f"{model.path.name} has no similar-cases index "
                                 f"({target.name}) and is not a training run whose "
                                 "images are known")
            say(f"Indexing the training images of {model.path.parent.name} (once)…")
            index = build_index(model, run[0], run[1], on_progress=on_progress,
                                should_stop=should_stop,
                                source=f"training part of run {model.path.parent.name}")
            try:
                index.save(target)
            except OSError as exc:  # a read-only run folder: kept in memory only
                say(f"the similar-cases index could not be cached: {exc}")
        if run is not None:
            index.data_dir = run[0]
        _indexes[key] = index
        return index


def id_paths(data_dir: str | Path | None) -> dict[str, str]:
    """image id -> path for the dataset in `data_dir` ({} when there is none)."""
    if not data_dir:
        return {}
    key = str(Path(data_dir).expanduser().resolve())
    if key not in _id_paths:
        from core.dataset import load_dataset

        try:
            records = load_dataset(key).records
            _id_paths[key] = dict(zip(records["image_id"], records["path"], strict=True))
        except (DatasetError, OSError):
            return {}
    return _id_paths[key]


def similar_cases(model: Classifier, queries: np.ndarray, k: int = 6, *,
                  data_dir: str | Path | None = None, index: SimilarIndex | None = None,
                  on_progress: Progress | None = None,
                  should_stop: Callable[[], bool] | None = None,
                  status: Callable[[str], None] | None = None) -> list[list[SimilarCase]]:
    """The `k` training images nearest to each query, best first.

    `queries`: uint8 images (n, size, size, 3) at the model's input, or their features
    (n, D). Paths are filled from the run's data folder, else from `data_dir`.
    """
    if k < 1:
        raise ModelError("the number of similar cases must be at least 1")
    index = index or index_for(model, on_progress=on_progress, should_stop=should_stop,
                               status=status)
    q = np.asarray(queries)
    features = model.features(q) if q.dtype == np.uint8 and q.ndim == 4 else q
    where = id_paths(index.data_dir) or id_paths(data_dir)
    return [[SimilarCase(str(index.image_ids[i]), str(index.dx[i]), round(s, 4),
                         where.get(str(index.image_ids[i]))) for i, s in row]
            for row in index.nearest(features, k)] if len(features) else []


def similar_to_files(model: Classifier, files: Sequence[str], k: int = 6,
                     **options: Any) -> list[list[SimilarCase]]:
    """`similar_cases` of image files ([] for a file that cannot be read)."""
    from core.images import read_image

    size, crop = model.info.image_size, model.info.crop
    images, good = [], []
    for n, f in enumerate(files):
        try:
            images.append(read_image(f, size, crop))
            good.append(n)
        except ImageError:
            continue
    out: list[list[SimilarCase]] = [[] for _ in files]
    if images:
        for n, cases in zip(good, similar_cases(model, np.stack(images), k, **options),
                            strict=True):
            out[n] = cases
    return out


def add_similar(model: Classifier, predictions: Sequence[Any], rows: list[dict[str, Any]],
                k: int, data_dir: str | Path | None = None,
                status: Callable[[str], None] | None = None,
                on_progress: Progress | None = None) -> list[str]:
    """Add `similar` to each prediction's JSON row (refused or unreadable images get []);
    return one text line per classified image."""
    if k < 1:
        raise ModelError("--similar needs a number of cases of at least 1")
    wanted = [n for n, p in enumerate(predictions) if not p.error and p.in_domain is not False]
    found = similar_to_files(model, [predictions[n].path for n in wanted], k,
                             data_dir=data_dir, status=status, on_progress=on_progress) \
        if wanted else []
    for row in rows:
        row["similar"] = []
    lines = []
    for n, cases in zip(wanted, found, strict=True):
        rows[n]["similar"] = [c._asdict() for c in cases]
        lines.append(f"{predictions[n].path}: similar training images: " + ", ".join(
            f"{c.image_id} ({c.dx}, {short_name(c.dx)}, {c.similarity:.2f})" for c in cases))
    return lines
