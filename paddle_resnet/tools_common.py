"""The shared front end of tools/train.py, eval.py and export_model.py: parse, load the config, run, report."""
import sys

from .config import config_argument_parser, load_config
from .errors import UserError


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
    except UserError as err:  # anything else is a bug and keeps its traceback
        sys.exit(f"{tool}: error: {err}")
