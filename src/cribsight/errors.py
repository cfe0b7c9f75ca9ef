"""Typed errors. Each says what was expected and what was found."""
from __future__ import annotations


class CribsightError(Exception):
    """Base class of every error cribsight raises on purpose."""


class _ExpectedFound:
    """Mixin: an error built from what was being handled, what was expected and what was found."""

    def __init__(self, what: str, expected: str, found: str):
        self.what, self.expected, self.found = what, expected, found
        super().__init__(f"{what}: expected {expected}, found {found}")


class InputError(_ExpectedFound, CribsightError, ValueError):
    """A user-supplied input (file, array, argument) is not what the API expects."""


class DecodeError(InputError):
    """A file could not be decoded as an image or video."""


class OutputError(_ExpectedFound, CribsightError, OSError):
    """An output (a results file, a render) could not be written."""


class WeightsError(CribsightError):
    """A weight file is missing or does not match its manifest."""


class MissingExtraError(CribsightError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, module: str, extra: str):
        super().__init__(f"{module} is needed for this feature: pip install 'cribsight[{extra}]'")
