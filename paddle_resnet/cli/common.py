"""What the commands share: the program name in messages, one-line user errors, ``-c/-o`` config tools."""
import argparse
import contextlib
import errno
import math
import os
import signal
import sys
import threading

from ..config import load_config
from ..checks import MAX_WORKERS
from ..errors import InputError, UserError, short_repr


def program_name(prog=None):
    """``prog`` (``paddle-resnet train``) or the running script's file name (``train.py``)."""
    return prog or os.path.basename(sys.argv[0]) or "paddle-resnet"


def fail(prog, message, exit_code=1):
    """Prints ``<prog>: error: <message>`` on stderr and returns the exit code."""
    print(f"{program_name(prog)}: error: {message}", file=sys.stderr)
    return exit_code


def tool_parser(description, prog=None):
    """The argument parser of a tool, with ``-v/--verbose`` (read before Paddle loads: verbosity.py)."""
    parser = argparse.ArgumentParser(prog=program_name(prog), description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show Paddle's own log lines (C++ INFO/WARNING, launcher) as well")
    return parser


def config_tool_parser(description, prog=None):
    """The ``-c config.yaml -o Section.key=value`` front end of the config tools."""
    parser = tool_parser(description, prog)
    parser.add_argument("-c", "--config", required=True, help="YAML config, e.g. configs/resnet50.yaml")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="Section.key=value",
                        help="override a config value; repeatable")
    return parser


def int_at_least(minimum, maximum=None):
    """argparse type: an integer >= ``minimum`` (and <= ``maximum``); anything else is argparse's one-line usage
    error, exit code 2."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {shown}")
        return value
    return parse


def number_at_least(minimum, maximum=None):
    """argparse type: a finite number >= ``minimum`` (and <= ``maximum``), as ``int_at_least`` says it."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum:g}" if maximum is None else f"from {minimum:g} to {maximum:g}"
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise argparse.ArgumentTypeError(f"must be a number {bound}, got {shown}")
        return value
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
thread_count = int_at_least(1, MAX_WORKERS)  # the bound of Global.num_threads and DataLoader.num_workers
worker_count = int_at_least(0, MAX_WORKERS)


def check_path_lengths(**paths):
    """InputError for a path (given as ``option=path``) the system cannot even look up: a name or path
    longer than it allows (ENAMETOOLONG), shown cut short."""
    for option, path in paths.items():
        if path is None:
            continue
        try:
            os.stat(path)
        except OSError as error:
            if error.errno == errno.ENAMETOOLONG:
                raise InputError(f"--{option.replace('_', '-')} {short_repr(path)}: {error.strerror}") from None


def run_engine(description, mode, argv, action, add_arguments=None, prog=None):
    """Parses ``-c CONFIG -o KEY=VALUE``, builds the Engine in ``mode`` and returns ``action(engine, args)``;
    a UserError exits with one line (code 1), anything else is a bug and keeps its traceback."""
    parser = config_tool_parser(description, prog)
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        with sigterm_as_exit():
            config = load_config(args.config, args.override)
            from ..engine import Engine
            return action(Engine(config, mode, overrides=args.override), args)
    except UserError as err:
        sys.exit(fail(prog, err))


@contextlib.contextmanager
def sigterm_as_exit():
    """SIGTERM raises SystemExit(143) instead of ending the process where it stands, so that a write in
    progress (an export's staging folder, a temporary file) is removed on the way out. Training replaces it
    with its own stop-at-the-next-step handler while it trains. Left as it is where SIGTERM is not at its
    default (ignored, or handled by an embedding program) or off the main thread."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return
    def exit_now(signum, _frame):
        raise SystemExit(128 + signum)
    previous = signal.signal(signal.SIGTERM, exit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
