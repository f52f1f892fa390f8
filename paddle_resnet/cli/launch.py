"""Start a tool in several processes: ``paddle.distributed.launch`` with the same arguments, with Paddle's own
console messages quiet (its launcher's ``LAUNCH INFO`` lines and C++ log); ``-v`` / ``--verbose`` shows them.

    python tools/launch.py --nproc_per_node 2 tools/train.py -c configs/quickstart.yaml

is ``python -m paddle.distributed.launch --nproc_per_node 2 tools/train.py -c configs/quickstart.yaml`` with
``--log_level WARNING`` (any ``--log_level`` given is kept).
"""
import sys

from ..verbosity import VERBOSE_FLAGS, is_verbose


def launch_arguments(argv):
    """``argv`` for Paddle's launcher: our ``-v`` taken out (it is read before the script; the processes inherit
    it as PADDLE_RESNET_VERBOSE), ``--log_level WARNING`` added unless verbose or given."""
    script = next((i for i, arg in enumerate(argv) if arg.endswith(".py")), len(argv))
    options = [arg for arg in argv[:script] if arg not in VERBOSE_FLAGS]
    if not is_verbose() and not any(arg == "--log_level" or arg.startswith("--log_level=") for arg in options):
        options = ["--log_level", "WARNING", *options]
    return options + argv[script:]


def main(argv=None, prog=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    from paddle.distributed.launch.main import launch
    sys.argv = [prog or "launch.py", *launch_arguments(argv)]
    launch()
    return 0
