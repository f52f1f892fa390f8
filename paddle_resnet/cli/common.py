"""What the commands share: the program name in messages, one-line user errors, ``-c/-o`` config tools."""
import argparse
import os
import sys

from ..config import config_argument_parser, load_config
from ..errors import UserError


def program_name(prog=None):
    """``prog`` (``paddle-resnet train``) or the running script's file name (``train.py``)."""
    return prog or os.path.basename(sys.argv[0]) or "paddle-resnet"


def fail(prog, message, exit_code=1):
    """Prints ``<prog>: error: <message>`` on stderr and returns the exit code."""
    print(f"{program_name(prog)}: error: {message}", file=sys.stderr)
    return exit_code


def int_at_least(minimum):
    """argparse type: an integer >= ``minimum`` (anything else is argparse's one-line usage error, exit code 2)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text}")
        return value
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def run_engine(description, mode, argv, action, add_arguments=None, prog=None):
    """Parses ``-c CONFIG -o KEY=VALUE``, builds the Engine in ``mode`` and returns ``action(engine, args)``;
    a UserError exits with one line (code 1), anything else is a bug and keeps its traceback."""
    parser = config_argument_parser(description, prog=program_name(prog))
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.override)
        from ..engine import Engine
        return action(Engine(config, mode, overrides=args.override), args)
    except UserError as err:
        sys.exit(fail(prog, err))
