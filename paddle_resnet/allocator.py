"""tcmalloc for the training and evaluation tools, where the system has it (``apt install libtcmalloc-minimal4``).

Paddle's CPU tensors come straight from malloc, and glibc's malloc serves every block over 32 MB (its largest
mmap threshold; a resnet50 activation at 224 px and batch 32 is 103 MB) with a fresh mmap, unmapped again on
free: every training step faults those pages in anew. Measured on the README's fine-tune step (resnet50, 224 px,
batch 32, dygraph, 2 threads, Intel Xeon): glibc 7.6 M page faults and 12.9 s of system time per 5 steps (19%
of user time); tcmalloc keeps the freed pages, 0.74 M faults and 2.1 s (4%), peak RSS 3.3 GB, and the steps
11% faster (docs/benchmarks.md, "Memory of a 224-px fine-tune").

The allocator must be loaded before the process starts (``LD_PRELOAD``), so a tool started as a script runs
itself again with it; ``PADDLE_RESNET_MALLOC=system`` keeps glibc's.
"""
import os
import sys

MALLOC_ENV = "PADDLE_RESNET_MALLOC"
TCMALLOC_NAME = "libtcmalloc_minimal.so.4"
LIBRARY_FOLDERS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
                   "/usr/local/lib")


def find_tcmalloc(folders=LIBRARY_FOLDERS):
    """The path of tcmalloc's shared library in the system's library folders, or None."""
    for folder in folders:
        path = os.path.join(folder, TCMALLOC_NAME)
        if os.path.isfile(path):
            return path
    return None


def tcmalloc_environment(environ, library):
    """``environ`` with ``library`` preloaded, or None where nothing is to change: tcmalloc already preloaded,
    ``PADDLE_RESNET_MALLOC`` set (``system``: the user's choice; ``tcmalloc``: this process is the re-run)."""
    if library is None or environ.get(MALLOC_ENV) or "tcmalloc" in environ.get("LD_PRELOAD", ""):
        return None
    preload = " ".join(filter(None, [library, environ.get("LD_PRELOAD")]))
    return {**environ, "LD_PRELOAD": preload, MALLOC_ENV: "tcmalloc"}


def run_with_tcmalloc():
    """Runs this script's command line again with tcmalloc preloaded, where the system has it and it is not
    loaded yet; returns where nothing is to change. Call it first thing in a tool's ``__main__``, never from
    a function a program imports (it replaces the process)."""
    environ = tcmalloc_environment(os.environ, find_tcmalloc())
    if environ is not None:
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)


def allocator_in_use():
    """Which malloc this process runs on, for the training log."""
    if "tcmalloc" in os.environ.get("LD_PRELOAD", ""):
        return "tcmalloc"
    return ("glibc malloc (apt install libtcmalloc-minimal4: fewer page faults and less system time on large "
            "images, docs/training.md#memory)")
