"""Calibration: expected calibration error, reliability diagrams and temperature scaling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ECE_BINS = 15


@dataclass
class Reliability:
    """Per-bin figures of a reliability diagram (equal-width bins of top-class confidence)."""

    edges: np.ndarray  # (bins + 1,)
    confidence: np.ndarray  # (bins,) mean confidence per bin (nan where empty)
    accuracy: np.ndarray  # (bins,) fraction correct per bin (nan where empty)
    counts: np.ndarray  # (bins,)

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean |accuracy - confidence|."""
        total = self.counts.sum()
        if total == 0:
            return 0.0
        filled = self.counts > 0
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float((gaps * self.counts[filled]).sum() / total)


def reliability(y_true: np.ndarray, proba: np.ndarray, bins: int = ECE_BINS) -> Reliability:
    """Bin images by their top-class confidence and compare it with how often they are right."""
    proba = np.asarray(proba, dtype=np.float64)
    confidence = proba.max(axis=1) if len(proba) else np.zeros(0)
    correct = (proba.argmax(axis=1) == np.asarray(y_true)) if len(proba) else np.zeros(0, bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    counts = np.bincount(index, minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, confidence, minlength=bins) / counts
        accuracy = np.bincount(index, correct.astype(float), minlength=bins) / counts
    return Reliability(edges, mean_conf, accuracy, counts)


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray,
                               bins: int = ECE_BINS) -> float:
    """ECE over `bins` equal-width bins of the top-class confidence."""
    return reliability(y_true, proba, bins).ece


def _tempered(log_proba: np.ndarray, temperature: float) -> np.ndarray:
    z = log_proba / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(y_true: np.ndarray, proba: np.ndarray) -> float:
    """The temperature T minimising the negative log-likelihood of softmax(log(p) / T)."""
    from scipy.optimize import minimize_scalar

    y_true = np.asarray(y_true, dtype=int)
    log_proba = np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, None))
    rows = np.arange(len(y_true))

    def nll(log_t: float) -> float:
        p = _tempered(log_proba, float(np.exp(log_t)))
        return float(-np.log(np.clip(p[rows, y_true], 1e-12, None)).mean())

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


@dataclass
class TemperatureChoice:
    """The fitted temperature, whether it is used, and the validation ECE either way."""

    fitted: float
    used: float
    ece_before: float
    ece_after: float


def choose_temperature(y_true: np.ndarray, proba: np.ndarray) -> TemperatureChoice:
    """Fit a temperature on validation predictions; use it only if it lowers their ECE."""
    if len(y_true) < 2:
        ece = expected_calibration_error(y_true, proba)
        return TemperatureChoice(1.0, 1.0, ece, ece)
    fitted = fit_temperature(y_true, proba)
    before = expected_calibration_error(y_true, proba)
    log_proba = np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, None))
    after = expected_calibration_error(y_true, _tempered(log_proba, fitted))
    used = fitted if after < before else 1.0
    return TemperatureChoice(fitted, used, before, min(after, before))
