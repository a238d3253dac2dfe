"""A Keras metric for balanced accuracy (mean per-class recall), so every epoch reports it.

Plain accuracy on HAM10000's validation part mostly measures nevi; the live curves and the
history show balanced accuracy beside it. The class is defined on first use (Keras is
imported lazily) and registered, so checkpoints that name it load in safe mode.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from core.backend import keras


@cache
def metric_class() -> type:
    """The registered BalancedAccuracy metric class."""
    k = keras()
    ops = k.ops

    @k.saving.register_keras_serializable(package="skin_lesion")
    class BalancedAccuracy(k.metrics.Metric):  # type: ignore[misc, name-defined]
        """Mean recall over the classes present so far (sample weights are ignored)."""

        def __init__(self, n_classes: int, name: str = "balanced_accuracy",
                     **kwargs: Any) -> None:
            super().__init__(name=name, **kwargs)
            self.n_classes = n_classes
            self.hits = self.add_variable(shape=(n_classes,), initializer="zeros", name="hits")
            self.support = self.add_variable(shape=(n_classes,), initializer="zeros",
                                             name="support")

        def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
            truth = ops.one_hot(ops.argmax(y_true, axis=-1), self.n_classes)
            correct = ops.cast(ops.argmax(y_true, axis=-1) == ops.argmax(y_pred, axis=-1),
                               "float32")
            self.support.assign_add(ops.sum(truth, axis=0))
            self.hits.assign_add(ops.sum(truth * correct[:, None], axis=0))

        def result(self) -> Any:
            present = ops.cast(self.support > 0, "float32")
            recall = self.hits / ops.maximum(self.support, 1.0)
            return ops.sum(recall * present) / ops.maximum(ops.sum(present), 1.0)

        def reset_state(self) -> None:
            self.hits.assign(ops.zeros((self.n_classes,)))
            self.support.assign(ops.zeros((self.n_classes,)))

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "n_classes": self.n_classes}

    return BalancedAccuracy


def balanced_accuracy(n_classes: int) -> Any:
    """A new BalancedAccuracy metric for `n_classes` classes."""
    return metric_class()(n_classes)
