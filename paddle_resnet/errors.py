"""Errors that describe a problem with what the user gave, and the one way to phrase a choice.

Tools print a ``UserError`` as one line and exit non-zero; any other exception is a bug and keeps its
traceback. The subclasses also derive from the builtin a caller would expect (ValueError,
FileNotFoundError, UnpicklingError), so ``except ValueError`` keeps working.
"""
import difflib
import math
import numbers
import pickle


class UserError(Exception):
    """A bad config value, file, argument or data set: reported as one line, no traceback."""


class ConfigError(UserError, ValueError):
    """A config key or value that is not allowed."""


class InputError(UserError, ValueError):
    """A file, data set or argument that cannot be used as given."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class OutputError(UserError, OSError):
    """A file or folder that cannot be written: read-only, full, over the file-size limit, or in use.
    ``reason`` is the system's word for it ("File too large"), for callers that rephrase the message."""

    def __init__(self, message, reason=None):
        super().__init__(message)
        self.reason = reason


class UnsafeFileError(UserError, pickle.UnpicklingError):
    """A weights or checkpoint file that asks to run code or to allocate more than it holds."""


def is_number(value, finite=False):
    """A real number, not a bool (``finite``: not inf or nan either); what config checks accept as a number."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and (not finite or math.isfinite(value))


def is_int(value):
    """An integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def short_repr(value, limit=80):
    """``repr(value)`` cut to ``limit`` characters: what a message may show of a value the user gave.

    A YAML alias bomb or a 100,000-deep list must never be expanded into a message, so containers are
    summarised by type and length, not by ``repr`` (which would walk every shared branch)."""
    if isinstance(value, (list, tuple)) and len(value) <= 8 and all(
            isinstance(item, (int, float, str, type(None))) for item in value):  # flat and short: shown
        text = ", ".join(short_repr(item, 20) for item in value)
        text = f"[{text}]" if isinstance(value, list) else f"({text}{',' if len(value) == 1 else ''})"
        if len(text) <= limit:
            return text
    if isinstance(value, (dict, list, tuple, set)):
        return f"<{type(value).__name__} of {len(value)}>"
    text = repr(value) if not isinstance(value, (str, bytes)) or len(value) <= limit else repr(value[:limit])
    return text if len(text) <= limit else text[:limit - 3] + "..."


def did_you_mean(value, choices):
    """``"; did you mean 'resnet50'?"`` for the closest of ``choices`` (numerically closest for numbers;
    "" when there are no choices)."""
    choices = list(choices)
    if choices and is_number(value) and all(is_number(c) for c in choices):
        return f"; did you mean {min(choices, key=lambda c: abs(c - value))}?"
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.0)
    return f"; did you mean {close[0]!r}?" if close else ""


def choice_error(what, value, choices, error=ConfigError):
    """``<what> 'x' is not supported; choose one of a, b, c`` (plus the nearest choice) as ``error``."""
    listed = ", ".join(str(c) for c in choices)
    return error(f"{what} {short_repr(value)} is not supported; choose one of {listed}{did_you_mean(value, choices)}")


def check_choice(what, value, choices, error=ConfigError):
    """``value`` if it is one of ``choices``, else raise :func:`choice_error`."""
    if value not in choices:
        raise choice_error(what, value, choices, error)
    return value
