"""Build a class named in a config from the section's keyword arguments, reporting bad keys as ConfigError."""
import inspect

from ..errors import ConfigError, did_you_mean

__all__ = ["instantiate"]


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
