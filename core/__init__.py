"""Headless core of the skin-lesion workbench: data, models, training, evaluation.

Nothing here imports Qt. TensorFlow is imported lazily, inside the functions that need it,
so importing `core` stays fast.
"""

__version__ = "0.2.0"
