"""Ensembles: several saved models averaged inside one Keras model, so one file is the recipe.

The ensemble's input size is the largest member's (or `size`); a member trained at another
size gets a `Resizing` layer in front. Each member is a nested model named `member_<i>` with
two outputs, its probabilities and its penultimate features; the ensemble's output is the mean
of the probabilities (a `probabilities` Average layer). Plain Keras layers only, so the file loads
in safe mode. The domain gate reads the first member's features; Grad-CAM averages the
members' heatmaps for the ensemble's class.
"""

from __future__ import annotations

from typing import Any

from core.backend import keras
from core.errors import ModelError
from core.models import FEATURES

PREFIX = "member_"


def build_ensemble(members: list[Any], size: int | None = None,
                   name: str = "ensemble") -> Any:
    """One model averaging `members` (Keras models with a `features` layer) on raw images.

    The first member's features feed the domain gate: put the member whose features tell
    lesions from other images best first.
    """
    if len(members) < 2:
        raise ModelError("an ensemble needs at least two models")
    layers = keras().layers
    size = size or max(int(m.input_shape[1]) for m in members)
    inputs = keras().Input((size, size, 3), name="image")
    probabilities = []
    for i, member in enumerate(members):
        try:
            features = member.get_layer(FEATURES).output
        except ValueError as exc:
            raise ModelError(f"member {i} ({member.name}) has no '{FEATURES}' layer") from exc
        wrapped = keras().Model(member.inputs, [member.outputs[0], features],
                                name=f"{PREFIX}{i}")
        own = int(member.input_shape[1])
        x = inputs if own == size else layers.Resizing(own, own, name=f"resize_{i}")(inputs)
        # inference mode fixed in the graph: a plain `model(x)` in Keras (or an export's
        # serving function) must not run the members' dropout
        proba, _ = wrapped(x, training=False)
        probabilities.append(proba)
    outputs = layers.Average(name="probabilities")(probabilities)
    return keras().Model(inputs, outputs, name=name)


def members(model: Any) -> list[Any]:
    """The member models of an ensemble (empty for any other model)."""
    return [layer for layer in model.layers if layer.name.startswith(PREFIX)
            and hasattr(layer, "layers")]


def first_member_features(model: Any) -> Any:
    """The first member's penultimate features, as a tensor of the ensemble's graph."""
    member = members(model)[0]
    return member._inbound_nodes[0].outputs[1]


def single_output(member: Any) -> Any:
    """A member as a plain one-output model (probabilities), sharing its layers."""
    return keras().Model(member.inputs, member.outputs[0], name=f"{member.name}_single")
