"""Exceptions raised by stntool.

The library raises these; the command line turns them into one-line messages and exit codes.
"""


class StnError(Exception):
    """Base class of every error stntool raises on purpose."""


class InvalidArgumentError(StnError, ValueError):
    """An argument has the wrong shape, dtype, value or combination."""


class DegenerateError(StnError, ValueError):
    """Point sets that do not determine a transform (too few, duplicate, collinear)."""


class BackendUnavailableError(StnError, RuntimeError):
    """An explicitly requested backend cannot run on this machine."""


class ImageReadError(StnError):
    """An input could not be read as an image."""


class ImageWriteError(StnError):
    """An output could not be written."""
