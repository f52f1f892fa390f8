"""The value checks every part of the package shares: one line naming the key, the bad value and what is allowed.

``check_int`` / ``check_number`` for single values; ``Int``, ``Number``, ``Bool``, ``Path`` and ``Choice`` as rules
a subsystem lists against its config keys; ``instantiate`` builds a class a config names from its arguments.
"""
import inspect

from .errors import ConfigError, check_choice, did_you_mean, is_int, is_number, short_repr

MAX_WORKERS = 64  # loader processes or CPU threads: more is a typo that would fork the machine to a halt


def shown(value):
    """How a message shows a user's value: a short list of numbers or short strings in full (``[3, 0, 16]``),
    anything else as ``errors.short_repr`` (bounded, whatever the value holds)."""
    if (isinstance(value, list) and len(value) <= 8
            and all(isinstance(v, (int, float, bool, type(None))) or isinstance(v, str) and len(v) <= 20
                    for v in value)):
        return repr(list(value))  # a frozen config list shows as a list
    return short_repr(value)


def check_int(what, value, minimum, maximum=None, optional=False, error=ConfigError):
    """``value`` as an int in [minimum, maximum]; ``optional`` lets None through."""
    if value is None and optional:
        return None
    if not is_int(value) or value < minimum or (maximum is not None and value > maximum):
        allowed = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        none = " (or null)" if optional else ""
        raise error(f"{what} must be an integer {allowed}{none}, got {shown(value)}")
    return int(value)


class Int:
    def __init__(self, minimum, maximum=None, optional=False):
        self.minimum, self.maximum, self.optional = minimum, maximum, optional

    def __call__(self, key, value):
        check_int(key, value, self.minimum, self.maximum, self.optional)


class Number:
    """A real number in a range; ``low``/``high`` are inclusive unless ``open_low``/``open_high``."""

    def __init__(self, low=None, high=None, open_low=False, open_high=False, optional=False):
        self.low, self.high, self.open_low, self.open_high = low, high, open_low, open_high
        self.optional = optional

    def _range(self):
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {self.low}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {self.high}")
        return " and ".join(parts)

    def __call__(self, key, value):
        if value is None and self.optional:
            return
        ok = is_number(value, finite=True)
        if ok and self.low is not None:
            ok = value > self.low if self.open_low else value >= self.low
        if ok and self.high is not None:
            ok = value < self.high if self.open_high else value <= self.high
        if not ok:
            none = " (or null)" if self.optional else ""
            raise ConfigError(f"{key} must be a number {self._range()}{none}, got {shown(value)}")


class Path:
    def __call__(self, key, value):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{key} must be a path (a non-empty string), got {shown(value)}")


class Bool:
    def __init__(self, hint=""):
        self.hint = hint

    def __call__(self, key, value):
        if not isinstance(value, bool):
            hint = f" ({self.hint})" if self.hint else ""
            raise ConfigError(f"{key} must be true or false{hint}, got {shown(value)}")


class Choice:
    def __init__(self, choices):
        self.choices = tuple(choices)

    def __call__(self, key, value):
        check_choice(key, value, self.choices)


def instantiate(cls, kwargs, where, hidden=()):
    """``cls(**kwargs)``, but an unknown or missing argument is a one-line ConfigError naming ``where``, the
    key and the valid ones (with the nearest). ``hidden``: arguments the caller fills in, not the user."""
    params = inspect.signature(cls).parameters
    valid = [name for name in params if name not in hidden]
    listed = ", ".join(valid) if valid else "none"
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key in kwargs:
        if key not in params and not takes_any:
            raise ConfigError(f"{where}: unknown argument {key!r}; its arguments are {listed}"
                              f"{did_you_mean(key, valid)}")
    for name, param in params.items():
        required = param.default is inspect.Parameter.empty and param.kind in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        if required and name not in kwargs:
            raise ConfigError(f"{where}: missing required argument {name!r}; its arguments are {listed}")
    return cls(**kwargs)
