"""The shared front end of tools/train.py, eval.py and export_model.py: parse, load the config, run, report."""
import sys

from .config import ConfigError, config_argument_parser, load_config
from .engine.device import DeviceUnavailable
from .engine.engine import TrainingDiverged

# Errors that describe a problem with the user's input; anything else keeps its traceback.
USER_ERRORS = (ConfigError, FileNotFoundError, TrainingDiverged, DeviceUnavailable, ValueError)


def run_engine(description, mode, argv, action, add_arguments=None):
    parser = config_argument_parser(description)
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    tool = sys.argv[0].rsplit("/", 1)[-1] or mode
    try:
        config = load_config(args.config, args.override)
        from .engine import Engine
        return action(Engine(config, mode), args)
    except USER_ERRORS as err:
        sys.exit(f"{tool}: error: {err}")
