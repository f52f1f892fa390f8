"""Paddle's own console output, quiet unless asked for: its C++ INFO and WARNING lines (``I1205 ... pir_interpreter``,
"static graph(PIR) not support input out tensor"), its "Modified FLAGS detected" banner and its import-time
warnings. The tools' ``-v`` / ``--verbose`` brings them back (``PADDLE_RESNET_VERBOSE=1``, which the processes a
launcher starts inherit); ``GLOG_minloglevel`` set by the user always wins."""
import contextlib
import io
import os
import sys

VERBOSE_ENV = "PADDLE_RESNET_VERBOSE"
VERBOSE_FLAGS = ("-v", "--verbose")


def is_verbose():
    return os.environ.get(VERBOSE_ENV) == "1"


def quiet_paddle(argv):
    """Before Paddle is imported: keep its C++ log to errors unless ``argv`` asks for ``-v``/``--verbose``."""
    if any(arg in VERBOSE_FLAGS for arg in argv):
        os.environ[VERBOSE_ENV] = "1"
    if not is_verbose():
        os.environ.setdefault("GLOG_minloglevel", "2")  # glog reads it when Paddle's C++ library loads


@contextlib.contextmanager
def paddle_banner_hidden():
    """Paddle's Python-level messages to stderr (init_parallel_env's "Modified FLAGS detected"), dropped unless
    verbose; shown after all if the call fails."""
    if is_verbose():
        yield
        return
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    except BaseException:
        sys.stderr.write(captured.getvalue())
        raise
