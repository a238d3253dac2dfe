"""The project's own error types: each carries a message meant for the user."""


class SkinLesionError(Exception):
    """Base class: anything the CLI or GUI can show to the user as one line."""


class DatasetError(SkinLesionError):
    """A dataset folder or its metadata cannot be used."""


class ImageError(SkinLesionError):
    """One image cannot be read or decoded."""


class ModelError(SkinLesionError):
    """A model cannot be built, loaded, or used."""


class CancelledError(SkinLesionError):
    """Long work was stopped by the user."""


class TrainingError(SkinLesionError):
    """A run could not finish for a reason outside the data and the model (e.g. a lost
    worker)."""
