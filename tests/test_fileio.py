"""Atomic files and units: a kill at any moment leaves the last good state whole, never a mix."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from paddle_resnet import fileio
from paddle_resnet.errors import OutputError
from paddle_resnet.fileio import commit_unit, committed_path, recover, write_atomically


def write_generation(folder, unit, generation, size=1000):
    """A unit of two files whose content names its generation (the second one large, to widen the window)."""
    def write(staging):
        with open(os.path.join(staging, f"{unit}.pdstates"), "w") as f:
            f.write(f"{generation}\n")
        with open(os.path.join(staging, f"{unit}.pdparams"), "w") as f:
            f.write(f"{generation}\n" + "x" * size)
    return commit_unit(folder, unit, write)


def read_generation(folder, unit):
    values = set()
    for suffix in (".pdstates", ".pdparams"):
        with open(committed_path(os.path.join(folder, unit + suffix))) as f:
            values.add(int(f.readline()))
    assert len(values) == 1, f"a unit mixes generations {sorted(values)}"
    return values.pop()


def test_write_atomically_follows_the_umask_and_leaves_no_temp_file(tmp_path):
    old = os.umask(0o027)
    try:
        path = write_atomically(tmp_path / "a.txt", lambda tmp: open(tmp, "w").write("hello"))
    finally:
        os.umask(old)
    assert open(path).read() == "hello"
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["a.txt"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")

    def failing(tmp):
        open(tmp, "w").write("half")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError):
        write_atomically(target, failing)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


def test_a_kill_after_the_commit_is_completed_by_readers_and_recover(tmp_path, monkeypatch):
    write_generation(tmp_path, "latest", 1)
    real_replace, calls = os.replace, []

    def replace_then_die(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the first file moved, the second not: the process "dies" here
            raise KeyboardInterrupt
        real_replace(src, dst)
    monkeypatch.setattr(fileio.os, "replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        write_generation(tmp_path, "latest", 2)
    monkeypatch.setattr(fileio.os, "replace", real_replace)
    assert read_generation(tmp_path, "latest") == 2  # readers see the committed unit whole
    recover(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["latest.pdparams", "latest.pdstates"]
    assert read_generation(tmp_path, "latest") == 2


def test_a_kill_before_the_commit_keeps_the_old_unit(tmp_path, monkeypatch):
    write_generation(tmp_path, "latest", 1)
    monkeypatch.setattr(fileio.os, "rename", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_generation(tmp_path, "latest", 2)
    assert read_generation(tmp_path, "latest") == 1
    assert sorted(os.listdir(tmp_path)) == ["latest.pdparams", "latest.pdstates"]


def test_recover_removes_what_killed_writes_left(tmp_path):
    write_generation(tmp_path, "latest", 1)
    (tmp_path / ".latest.pdstates.tmp-123-abcd1234").write_text("partial")
    (tmp_path / ".latest.staging-123-abcd1234").mkdir()
    (tmp_path / ".latest.staging-123-abcd1234" / "latest.pdparams").write_text("partial")
    removed = recover(tmp_path)
    assert removed == [".latest.pdstates.tmp-123-abcd1234", ".latest.staging-123-abcd1234"]
    assert sorted(os.listdir(tmp_path)) == ["latest.pdparams", "latest.pdstates"]


def test_a_unit_can_drop_a_file_of_the_previous_one(tmp_path):
    commit_unit(tmp_path, "inference", lambda d: [open(os.path.join(d, n), "w").write("1")
                                                  for n in ("inference.json", "inference.onnx")])
    commit_unit(tmp_path, "inference", lambda d: open(os.path.join(d, "inference.json"), "w").write("2"),
                remove=["inference.json", "inference.onnx"])
    assert os.listdir(tmp_path) == ["inference.json"] and (tmp_path / "inference.json").read_text() == "2"


WRITER = textwrap.dedent("""
    import os, sys, types
    package = types.ModuleType("paddle_resnet")  # the package's modules without its __init__ (and paddle)
    package.__path__ = [{package!r}]
    sys.modules["paddle_resnet"] = package
    from paddle_resnet import fileio

    def write(generation):
        def files(staging):
            with open(os.path.join(staging, "latest.pdstates"), "w") as f:
                f.write(f"{{generation}}\\n")
            with open(os.path.join(staging, "latest.pdparams"), "w") as f:
                f.write(f"{{generation}}\\n" + "x" * 2_000_000)
        fileio.commit_unit({folder!r}, "latest", files)

    generation = 1
    while True:
        write(generation)
        print(generation, flush=True)
        generation += 1
""")


def test_sigkill_at_random_moments_never_leaves_a_mixed_or_missing_unit(tmp_path):
    folder = str(tmp_path / "run")
    os.makedirs(folder)
    write_generation(folder, "latest", 0)
    seen, script = 0, WRITER.format(package=os.path.dirname(fileio.__file__), folder=folder)
    for kill in range(12):
        proc = subprocess.Popen([sys.executable, "-c", script],
                                stdout=subprocess.PIPE, text=True)
        assert int(proc.stdout.readline()) >= 1  # writing has started
        time.sleep(0.003 * kill)  # spread the kills over different moments of a write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        generation = read_generation(folder, "latest")  # a consistent unit, before any clean-up
        assert generation >= 0
        recover(folder)
        assert read_generation(folder, "latest") == generation
        assert sorted(os.listdir(folder)) == ["latest.pdparams", "latest.pdstates"]
        seen = max(seen, generation)
    assert seen > 0, "no write ever completed: the test did not exercise the writer"


def test_weights_of_a_committed_but_unmoved_checkpoint_are_read_from_the_commit(tmp_path):
    import numpy as np
    import paddle
    from paddle_resnet.weights import read_state_dict
    paddle.save({"w": np.zeros(2, np.float32)}, str(tmp_path / "latest.pdparams"))
    (tmp_path / ".latest.commit").mkdir()  # a killed writer had committed a newer unit
    paddle.save({"w": np.ones(2, np.float32)}, str(tmp_path / ".latest.commit" / "latest.pdparams"))
    path, state = read_state_dict(tmp_path / "latest")
    assert path == tmp_path / ".latest.commit" / "latest.pdparams"
    np.testing.assert_array_equal(state["w"], [1, 1])


# ---- a folder handed over by someone else: recovery touches only what it wrote, inside the folder ----------

def hostile_folder(tmp_path):
    """An output folder whose leftovers point outside it, and the outside files they point at."""
    outside = tmp_path / "outside"
    (outside / "docs").mkdir(parents=True)
    victims = {outside / "victim.txt": "keep me", outside / "abs.txt": "keep me too", tmp_path / "x": "and me",
               outside / "a" / "x": "me too",
               outside / "docs" / "readme.md": "a doc", outside / "target.bin": "linked to",
               outside / "staged" / "inner.txt": "in a linked folder"}
    (outside / "staged").mkdir()
    (outside / "a").mkdir()
    for path, text in victims.items():
        path.write_text(text)
    run = outside / "a" / "run"
    (run / "sub").mkdir(parents=True)  # so that "sub/../../x" resolves
    (run / ".evil.commit").mkdir()
    (run / ".evil.commit" / ".remove").write_text(f"../../victim.txt\n{outside / 'abs.txt'}\nsub/../../x\n"
                                                  "../../../x\n")
    (run / ".docs.commit").symlink_to(outside / "docs")
    (run / ".latest.commit").mkdir()
    (run / ".latest.commit" / "latest.pdparams").write_text("committed")
    (run / ".latest.commit" / "latest.pdstates").symlink_to(outside / "target.bin")
    (run / ".x.tmp-123-abcd1234").symlink_to(outside / "target.bin")
    (run / ".x.staging-123-abcd1234").symlink_to(outside / "staged")
    return run, victims


def assert_untouched(victims):
    for path, text in victims.items():
        assert path.is_file() and path.read_text() == text, path


def test_recover_never_touches_files_outside_the_folder_or_through_links(tmp_path, caplog):
    run, victims = hostile_folder(tmp_path)
    removed = recover(run)
    assert_untouched(victims)
    assert removed == []
    assert (run / "latest.pdparams").read_text() == "committed"  # the unit's own regular file is finished
    assert not (run / "latest.pdstates").exists()  # the link is not moved into place
    assert (run / ".x.tmp-123-abcd1234").is_symlink() and (run / ".x.staging-123-abcd1234").is_symlink()
    assert not (run / ".evil.commit").exists()  # its list named nothing it could have written
    # the link and the folder holding a link are set aside, so that the next commit of the unit works
    assert not os.path.lexists(run / ".docs.commit") and not os.path.lexists(run / ".latest.commit")
    assert sorted(p.name.split("-")[0] for p in run.iterdir() if ".refused-" in p.name) == [
        ".docs.refused", ".latest.refused"]
    assert "refused" in caplog.text and "victim.txt" in caplog.text
    write_generation(run, "latest", 3)
    write_generation(run, "docs", 4)
    assert read_generation(run, "latest") == 3 and read_generation(run, "docs") == 4
    assert_untouched(victims)


def test_a_commit_of_a_unit_never_acts_through_a_planted_commit_folder(tmp_path):
    run, victims = hostile_folder(tmp_path)
    (run / ".inference.commit").mkdir()
    (run / ".inference.commit" / ".remove").write_text("../victim.txt\n../../victim.txt\ninference.json\n")
    (run / "inference.json").write_text("old")
    commit_unit(run, "inference", lambda d: open(os.path.join(d, "inference.yml"), "w").write("new"))
    assert (run / "inference.yml").read_text() == "new"
    assert not (run / "inference.json").exists()  # a file the unit could have written: the list may drop it
    assert_untouched(victims)
    write_generation(run, "latest", 5)  # the planted .latest.commit holding a link, set aside first
    assert read_generation(run, "latest") == 5
    assert_untouched(victims)


def test_committed_path_never_reads_through_a_link(tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "latest.pdparams").write_text("outside")
    (tmp_path / "outside" / "secret").write_text("secret")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".latest.commit").symlink_to(tmp_path / "outside")
    assert committed_path(run / "latest.pdparams") == str(run / "latest.pdparams")
    (run / ".best.commit").mkdir()
    (run / ".best.commit" / "best.pdparams").symlink_to(tmp_path / "outside" / "secret")
    assert committed_path(run / "best.pdparams") == str(run / "best.pdparams")


def test_committed_path_finds_the_int8_model_of_a_pending_export(tmp_path):
    (tmp_path / ".inference.commit").mkdir()
    (tmp_path / ".inference.commit" / "inference_int8.onnx").write_text("new")
    assert committed_path(tmp_path / "inference_int8.onnx") == str(tmp_path / ".inference.commit" /
                                                                   "inference_int8.onnx")


def test_a_unit_writes_only_files_named_like_it(tmp_path):
    with pytest.raises(ValueError, match="not named like the unit"):
        commit_unit(tmp_path, "latest", lambda d: open(os.path.join(d, "train.log"), "w").close())
    with pytest.raises(ValueError, match="not named like the unit"):
        commit_unit(tmp_path, "latest", lambda d: None, remove=["../x"])
    assert os.listdir(tmp_path) == []


def test_an_oversized_remove_list_is_left_alone(tmp_path, caplog):
    (tmp_path / "latest.pdparams").write_text("old")
    (tmp_path / ".latest.commit").mkdir()
    (tmp_path / ".latest.commit" / ".remove").write_text("latest.pdparams\n" * 100_000)
    recover(tmp_path)
    assert (tmp_path / "latest.pdparams").read_text() == "old"
    assert "refused" in caplog.text


OVER_THE_FILE_SIZE_LIMIT = textwrap.dedent("""
    import os, resource, signal, sys, types
    package = types.ModuleType("paddle_resnet")
    package.__path__ = [{package!r}]
    sys.modules["paddle_resnet"] = package
    from paddle_resnet import fileio
    from paddle_resnet.errors import OutputError

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so that a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))

    def big_unit(staging):
        for suffix in (".pdstates", ".pdparams"):
            with open(os.path.join(staging, "latest" + suffix), "w") as f:
                f.write("2\\n" + "x" * 200_000)
    for attempt in (lambda: fileio.commit_unit({folder!r}, "latest", big_unit),
                    lambda: fileio.write_atomically(os.path.join({folder!r}, "log.txt"),
                                                    lambda tmp: open(tmp, "w").write("x" * 200_000))):
        try:
            attempt()
        except OutputError as error:
            print(error)
""")


def test_a_write_over_the_file_size_limit_keeps_the_last_good_unit_and_names_the_file(tmp_path):
    write_generation(tmp_path, "latest", 1)
    (tmp_path / "log.txt").write_text("old")
    script = OVER_THE_FILE_SIZE_LIMIT.format(package=os.path.dirname(fileio.__file__), folder=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"cannot write {tmp_path}/latest.*: File too large",
                                          f"cannot write {tmp_path}/log.txt: File too large"]
    assert read_generation(tmp_path, "latest") == 1 and (tmp_path / "log.txt").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["latest.pdparams", "latest.pdstates", "log.txt"]


def test_an_unwritable_folder_is_one_output_error_naming_it(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OutputError) as error:
        write_generation(tmp_path / "file" / "run", "latest", 1)
    assert str(error.value) == f"cannot write {tmp_path}/file/run: Not a directory"
    with pytest.raises(OutputError) as error:
        write_atomically(tmp_path / "file" / "a.txt", lambda tmp: open(tmp, "w").write("x"))
    assert str(error.value) == f"cannot write {tmp_path}/file: Not a directory"
    with pytest.raises(OutputError) as error:
        write_atomically("/sys/a.txt", lambda tmp: open(tmp, "w").write("x"))  # root too may not write there
    assert str(error.value) == "cannot write /sys/a.txt: Permission denied"
    assert (tmp_path / "file").read_text() == "not a folder"


@pytest.mark.parametrize("kind", ["fifo", "folder", "socket"])
def test_a_write_never_replaces_a_fifo_a_folder_or_a_socket(tmp_path, kind):
    import socket
    target = tmp_path / "out.json"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "folder":
        target.mkdir()
    else:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(target))
    before = os.lstat(target)
    with pytest.raises(OutputError) as error:
        write_atomically(target, lambda tmp: open(tmp, "w").close())
    named = {"fifo": "a FIFO", "folder": "a folder", "socket": "a socket"}[kind]
    assert str(error.value) == f"cannot write {target}: it is {named}, not a regular file"
    assert error.value.reason == f"it is {named}, not a regular file"
    assert os.lstat(target).st_ino == before.st_ino and os.listdir(tmp_path) == ["out.json"]


def test_a_write_replaces_a_link_not_its_target(tmp_path):
    (tmp_path / "target.txt").write_text("kept")
    os.symlink(tmp_path / "target.txt", tmp_path / "out.txt")
    write_atomically(tmp_path / "out.txt", lambda tmp: open(tmp, "w").write("new"))
    assert (tmp_path / "target.txt").read_text() == "kept" and not os.path.islink(tmp_path / "out.txt")
    assert (tmp_path / "out.txt").read_text() == "new"


def test_a_commit_removes_the_stagings_of_killed_writers_only(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    killed = tmp_path / f".latest.staging-{dead}-0123abcd"
    live = tmp_path / f".latest.staging-{os.getpid()}-0123abcd"
    other_unit = tmp_path / f".best.staging-{dead}-0123abcd"
    for folder in (killed, live, other_unit):
        folder.mkdir()
        (folder / "latest.pdparams").write_text("half written")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    os.symlink(elsewhere, tmp_path / f".latest.staging-{dead}-4567cdef")
    write_generation(str(tmp_path), "latest", 1)
    assert sorted(os.listdir(tmp_path)) == sorted([
        live.name, other_unit.name, f".latest.staging-{dead}-4567cdef", "elsewhere", "latest.pdparams",
        "latest.pdstates"])
    assert (elsewhere / "keep.txt").read_text() == "keep"


def test_a_folder_that_is_a_dangling_link_is_named_as_such(tmp_path):
    os.symlink(tmp_path / "gone", tmp_path / "out")
    with pytest.raises(OutputError) as error:
        commit_unit(str(tmp_path / "out"), "inference", lambda staging: None)
    assert str(error.value) == f"cannot write {tmp_path / 'out'}: it is a link to '{tmp_path / 'gone'}', which does not exist"
    assert not (tmp_path / "gone").exists()
