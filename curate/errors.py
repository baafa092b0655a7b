"""Errors the curation library raises for problems a user can fix by changing config."""


class ModelLoadError(RuntimeError):
    """A model's files or weights could not be loaded when a stage started.

    The message is one line: which model, which setting to change, and why it failed.
    """
