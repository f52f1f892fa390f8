"""Loading a config: ``load_config(path, overrides)`` reads a YAML config in PaddleClas's layout, applies
``-o Section.key=value`` overrides, merges it over the defaults (config_schema.py) and runs every subsystem's
rules before anything is built. The result is read-only (``config.Global.epochs`` or ``config["Global"]["epochs"]``);
every problem is a ``ConfigError``: one line naming the key, the bad value and the allowed ones, no traceback.
"""
from .config_schema import apply_override, dump_config, freeze, merge_config, read_config, thaw
from .engine.rules import check_config
from .errors import ConfigError

__all__ = ["load_config", "validate", "apply_override", "dump_config", "thaw", "ConfigError"]


def validate(user):
    """The full config (defaults filled in, every value checked), read-only; ConfigError on the first problem."""
    return freeze(check_config(merge_config(thaw(user) if user is not None else None)))


def load_config(path, overrides=()):
    return validate(read_config(path, overrides))
