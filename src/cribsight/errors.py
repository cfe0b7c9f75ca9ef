"""Typed errors. Each says what was expected and what was found."""
from __future__ import annotations


class CribsightError(Exception):
    """Base class of every error cribsight raises on purpose."""


class InputError(CribsightError, ValueError):
    """A user-supplied input (file, array, argument) is not what the API expects."""

    def __init__(self, what: str, expected: str, found: str):
        self.what, self.expected, self.found = what, expected, found
        super().__init__(f"{what}: expected {expected}, found {found}")


class DecodeError(InputError):
    """A file could not be decoded as an image or video."""


class OutputError(CribsightError, OSError):
    """An output (a results file, a render) could not be written."""

    def __init__(self, what: str, expected: str, found: str):
        self.what, self.expected, self.found = what, expected, found
        super().__init__(f"{what}: expected {expected}, found {found}")


class WeightsError(CribsightError):
    """A weight file is missing or does not match its manifest."""


class MissingExtraError(CribsightError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, module: str, extra: str):
        super().__init__(f"{module} is needed for this feature: pip install 'cribsight[{extra}]'")
