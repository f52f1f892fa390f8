"""The output folder's lock: one live run per folder, never through a planted link or FIFO."""
import contextlib
import os
import signal

import pytest

from conftest import run_tool
from engine_fixtures import make_image_folder, tiny_config, write_config
from paddle_resnet.engine.run_dir import LOCK_FILE, OutputDirInUse, lock_output_dir, unlock_output_dir
from paddle_resnet.locks import acquire_lock, lock_is_held
from paddle_resnet.errors import OutputError


@contextlib.contextmanager
def no_longer_than(seconds):
    """Fails the test instead of hanging it (a blocking open of a FIFO is interrupted by the alarm)."""
    def give_up(*_):
        raise TimeoutError(f"blocked for more than {seconds} s")
    old = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_a_lock_file_that_is_a_link_is_refused_and_not_followed(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).symlink_to(tmp_path / "precious.txt")
    with pytest.raises(OutputError) as error:
        lock_output_dir(str(run))
    assert str(error.value) == f"{run}/.lock is a symbolic link, not a lock file of this program; remove it"
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    assert not lock_is_held(run / LOCK_FILE)


def test_a_lock_file_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / LOCK_FILE)
    with no_longer_than(10):
        assert not lock_is_held(tmp_path / LOCK_FILE)
        with pytest.raises(OutputError) as error:
            lock_output_dir(str(tmp_path))
    assert str(error.value) == (f"{tmp_path}/.lock is not a regular file (a FIFO, device or folder), not a lock "
                                f"file of this program; remove it")


def test_an_unwritable_output_folder_is_one_line_naming_it():
    with pytest.raises(OutputError) as error:
        lock_output_dir("/sys/kernel")  # a folder that even root cannot write into
    assert str(error.value) == "output folder /sys/kernel is not writable: Permission denied"


def test_a_live_holder_is_named_and_a_dead_ones_lock_is_taken_over(tmp_path):
    lock = tmp_path / LOCK_FILE
    lock.write_text("pid 999999 on elsewhere since 2020-01-01 00:00:00\n")  # a run that died
    lock_output_dir(str(tmp_path))
    try:
        assert lock_is_held(lock) and lock.read_text().startswith(f"pid {os.getpid()} on ")
        with pytest.raises(OutputDirInUse, match=rf"^pid {os.getpid()} on \S+ since "):
            acquire_lock(str(lock), OutputDirInUse)  # another open file of the lock: refused like another process
    finally:
        unlock_output_dir(str(tmp_path))
    assert not lock_is_held(lock)


@pytest.mark.slow
def test_train_into_an_unwritable_folder_is_one_line(tmp_path):
    folder = make_image_folder(tmp_path / "images", per_class=2)
    config = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, folder, folder,
                                                           Global={"output_dir": "/sys/kernel"}))
    result = run_tool("train.py", "-c", config)
    assert (result.returncode, result.stderr.strip()) == (
        1, "train.py: error: output folder /sys/kernel is not writable: Permission denied")
