"""The tools run on tcmalloc where the system has it (paddle_resnet/allocator.py)."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from paddle_resnet.allocator import MALLOC_ENV, TCMALLOC_NAME, find_tcmalloc, tcmalloc_environment

LIBRARY = "/lib/libtcmalloc_minimal.so.4"


def test_the_environment_preloads_tcmalloc_before_what_was_preloaded():
    environ = tcmalloc_environment({"LD_PRELOAD": "/lib/other.so", "HOME": "/h"}, LIBRARY)
    assert environ == {"LD_PRELOAD": f"{LIBRARY} /lib/other.so", "HOME": "/h", MALLOC_ENV: "tcmalloc"}


@pytest.mark.parametrize("environ", [{MALLOC_ENV: "system"}, {MALLOC_ENV: "tcmalloc"},
                                     {"LD_PRELOAD": "/opt/libtcmalloc.so"}])
def test_nothing_changes_when_chosen_already_or_preloaded(environ):
    assert tcmalloc_environment(environ, LIBRARY) is None


def test_nothing_changes_without_the_library(tmp_path):
    assert find_tcmalloc([str(tmp_path)]) is None
    assert tcmalloc_environment({}, None) is None
    (tmp_path / TCMALLOC_NAME).write_bytes(b"")
    assert find_tcmalloc([str(tmp_path / "missing"), str(tmp_path)]) == str(tmp_path / TCMALLOC_NAME)


SCRIPT = """
import os, sys
from paddle_resnet.allocator import run_with_tcmalloc
print("before", flush=True)
run_with_tcmalloc()
mapped = open("/proc/self/maps").read()
print("tcmalloc" if "libtcmalloc" in mapped else "glibc", os.getpid(), sys.argv[1:])
"""


@pytest.mark.skipif(find_tcmalloc() is None, reason="needs libtcmalloc-minimal4 (apt)")
@pytest.mark.parametrize("choice,expected", [(None, "tcmalloc"), ("system", "glibc")])
def test_a_tool_runs_itself_again_on_tcmalloc_with_the_same_arguments(tmp_path, choice, expected):
    script = tmp_path / "tool.py"
    script.write_text(SCRIPT)
    environ = {key: value for key, value in os.environ.items() if key not in (MALLOC_ENV, "LD_PRELOAD")}
    if choice:
        environ[MALLOC_ENV] = choice
    result = subprocess.run([sys.executable, str(script), "-c", "a b"], capture_output=True, text=True,
                            env={**environ, "PYTHONPATH": ROOT}, timeout=60)
    lines = result.stdout.split("\n")
    assert result.returncode == 0, result.stderr
    before = 2 if expected == "tcmalloc" else 1  # printed once by the first run and once by the second
    assert lines.count("before") == before
    allocator, pid, args = lines[before].split(" ", 2)
    assert allocator == expected and args == "['-c', 'a b']"
