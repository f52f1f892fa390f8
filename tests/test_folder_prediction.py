"""Predicting a folder into JSON Lines (paddle_resnet/deploy/folder_prediction/, predict.py --output): order,
unreadable files, resume after a kill, one writer per output, dead workers, and two processes under
paddle.distributed.launch. A small-stem ResNet-18 at 32x32 keeps it fast."""
import base64
import dataclasses
import glob
import inspect
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest
from PIL import Image

from paddle_resnet import build_model
from paddle_resnet.cli import predict
from paddle_resnet.deploy import Predictor, export_inference
from paddle_resnet.deploy.folder_prediction import FolderPrediction, InputFiles, walk_images, walk_order
from paddle_resnet.deploy.folder_prediction import decoding
from paddle_resnet.deploy.backends import RuntimeOptions
from paddle_resnet.errors import ConfigError, InputError, short_repr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABELS = [f"digit_{i}" for i in range(10)]
EVAL_OPS = [{"DecodeImage": {}}, {"ResizeImage": {"size": 32}}, {"NormalizeImage": {"order": ""}}, "ToCHWImage"]
UNREADABLE = {"a_corrupt.png": b"\x89PNG\r\n\x1a\n" + bytes(40), "b_empty.jpg": b"", "sub/c_text.jpg": b"text\n"}


def export_small_model(directory):
    """A small-stem ResNet-18 for 32x32 inputs, seeded, exported into ``directory``; returns it as a str."""
    paddle.seed(0)
    model = build_model("resnet18", num_classes=len(LABELS), stem_type="small")
    model.eval()
    export_inference(model, directory, image_shape=(3, 32, 32), eval_ops=EVAL_OPS, label_list=LABELS,
                     model_name="resnet18")
    return str(directory)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return export_small_model(tmp_path_factory.mktemp("resnet18_small"))


@pytest.fixture(scope="module")
def predictor(model_dir):
    return Predictor(model_dir, backend="paddle", max_batch_size=4)


def write_folder(folder, count, seed=0):
    """``count`` JPEGs of assorted sizes in ``folder`` and two levels of sub-folders, plus UNREADABLE and a
    non-image file; -> the image paths (readable or not) in walk order."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        sub = ["", "sub", os.path.join("sub", "deeper")][index % 3]
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
        size = tuple(int(s) for s in rng.integers(24, 64, 2))
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(
            os.path.join(folder, sub, f"img{index:04d}.jpg"), quality=90)
    for name, content in UNREADABLE.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(content)
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("not an image name: ignored")
    return sorted((os.path.join(root, name) for root, _, names in os.walk(folder) for name in names
                   if not name.endswith(".txt")), key=walk_order)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("photos"))
    return directory, write_folder(directory, 30)


def read_header(path):
    with open(path, encoding="utf-8") as f:
        return json.loads(f.readline())["predict"]


def read_records(path):
    """The records of a predictions file, after its header line; strict JSON (no NaN)."""
    with open(path, encoding="utf-8") as f:
        header, *records = [json.loads(line, parse_constant=reject_constant) for line in f]
    assert set(header) == {"predict"}
    return records


def reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def expected_records(predictor, paths, top_k=3):
    return [{"path": p.input, "class_ids": p.class_ids, "scores": p.scores, "label_names": p.label_names,
             "error": p.error} for p in predictor.predict(paths, top_k=top_k, batch_size=4)]


def assert_same_records(records, expected):
    assert [r["path"] for r in records] == [e["path"] for e in expected]
    for record, reference in zip(records, expected):
        assert record["class_ids"] == reference["class_ids"] and record["label_names"] == reference["label_names"]
        np.testing.assert_allclose(record["scores"], reference["scores"], rtol=1e-5, atol=1e-6)
        assert (record["error"] is None) == (reference["error"] is None)


def run_folder(predictor, inputs, output, workers=0, **options):
    job = FolderPrediction(InputFiles(inputs), output, **options)
    try:
        summary = job.run(predictor, top_k=3, batch_size=4, workers=workers, progress=False)
        job.finish()
    finally:
        job.close()
    return summary


# ---- in-process ---------------------------------------------------------------------------------------------

def test_walk_is_lazy_sorted_per_folder_and_recursive(folder):
    directory, paths = folder
    assert inspect.isgenerator(walk_images(directory))
    walked = list(InputFiles(directory))
    assert walked == paths and len(walked) == 30 + len(UNREADABLE)
    assert walked == sorted(walked, key=walk_order)
    assert os.path.join(directory, "sub", "deeper", "img0002.jpg") in walked
    assert not any(p.endswith(".txt") for p in walked)


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.slow
def test_records_match_predictor_and_list_unreadable_files_with_their_error(predictor, folder, tmp_path, workers):
    directory, paths = folder
    output = tmp_path / "preds.jsonl"
    summary = run_folder(predictor, directory, output, workers=workers)
    records = read_records(output)
    assert_same_records(records, expected_records(predictor, paths))
    assert (summary.predicted, summary.unreadable, summary.already_done) == (30, 3, 0)
    unreadable = {os.path.join(directory, name) for name in UNREADABLE}
    for record in records:
        if record["path"] in unreadable:
            assert record["path"] in record["error"] and record["class_ids"] == record["scores"] == []
        else:
            assert record["error"] is None and len(record["class_ids"]) == 3
            assert record["label_names"] == [LABELS[i] for i in record["class_ids"]]
    assert {r["path"] for r in records if r["error"]} == unreadable


def test_resume_drops_a_torn_last_line_and_lists_each_file_once(predictor, folder, tmp_path):
    directory, paths = folder
    full = tmp_path / "full.jsonl"
    run_folder(predictor, directory, full)
    lines = full.read_bytes().splitlines(keepends=True)
    partial = tmp_path / "partial.jsonl"
    partial.write_bytes(b"".join(lines[:12]) + lines[12][:25])  # header, 11 records, a kill in the middle of a write
    summary = run_folder(predictor, directory, partial, resume=True)
    assert (summary.already_done, summary.predicted + summary.unreadable) == (11, len(paths) - 11)
    assert_same_records(read_records(partial), read_records(full))


def test_existing_output_without_resume_is_refused_in_one_line(folder, tmp_path, capsys):
    directory, _ = folder
    output = tmp_path / "preds.jsonl"
    output.write_text('{"path": "x.jpg"}\n')
    code = predict.main(["--model-dir", str(tmp_path / "unused"), "--input", directory, "--output", str(output)],
                        prog="predict.py")
    assert code == 1
    assert capsys.readouterr().err == (f"predict.py: error: --output {output} already exists; add --resume to "
                                       f"skip the files it lists, or choose another --output\n")
    assert output.read_text() == '{"path": "x.jpg"}\n'


@pytest.mark.slow
def test_stdout_mode_walks_the_folder_once_even_to_decide_on_workers(
        model_dir, folder, monkeypatch, capsys):
    directory, paths = folder
    yielded, walk = [], InputFiles.__iter__

    def counting_walk(self):
        for path in walk(self):
            yielded.append(path)
            yield path

    monkeypatch.setattr(InputFiles, "__iter__", counting_walk)
    code = predict.main(["--model-dir", model_dir, "--input", directory, "--batch-size", "4", "--workers", "0",
                         "--backend", "paddle"], prog="predict.py")
    assert code == 0
    printed = capsys.readouterr().out
    assert all(os.path.basename(p) in printed for p in paths)
    # is_empty() peeks 1 name; the prediction walks all 33 once and decides on workers from its own first names.
    assert len(yielded) == 1 + len(paths)


@pytest.mark.slow
def test_ranks_shard_the_files_and_rank0_merges_even_when_resumed_with_another_process_count(predictor, folder,
                                                                                              tmp_path):
    directory, paths = folder
    output = tmp_path / "preds.jsonl"
    run_folder(predictor, directory, output, rank=1, world_size=2)  # rank 0 of that run died before writing
    assert [r["path"] for r in read_records(tmp_path / "preds.rank1.jsonl")] == paths[1::2]
    with pytest.raises(InputError, match=rf"^--output {output}: {tmp_path / 'preds.rank1.jsonl'} already exists; "
                                         rf"add --resume"):
        FolderPrediction(InputFiles(directory), output)
    summary = run_folder(predictor, directory, output, resume=True)  # one process now
    assert (summary.already_done, summary.predicted + summary.unreadable) == (len(paths[1::2]), len(paths[0::2]))
    assert_same_records(read_records(output), expected_records(predictor, paths))




def test_a_second_live_run_on_the_same_output_is_refused(folder, tmp_path):
    output = tmp_path / "preds.jsonl"
    first = FolderPrediction(InputFiles(folder[0]), output)
    try:
        with pytest.raises(InputError, match=rf"^--output {output} is being written by a live predict.py run "
                                             rf"\(pid {os.getpid()} on .+\); wait for it to finish or choose "
                                             rf"another --output$"):
            FolderPrediction(InputFiles(folder[0]), output, resume=True)
    finally:
        first.close()
    FolderPrediction(InputFiles(folder[0]), output, resume=True).close()  # released: the next run may start


@pytest.mark.parametrize("ahead", [True, False])
@pytest.mark.slow
def test_both_decoding_schedules_give_the_main_process_s_batches_and_errors(predictor, folder, ahead):
    directory, paths = folder
    to_input = predictor.to_input
    expected = list(decoding.decoded_batches(paths, 5, to_input, 0))
    # With workers a batch is a view of a shared slot, valid until the next one is asked for: copied here,
    # after a pause in which the workers finish every batch in flight (one sharing this slot would show).
    decoded = []
    for batch_paths, batch, errors in decoding.decoded_batches(paths, 5, to_input, 2, ahead):
        time.sleep(0.2)
        decoded.append((batch_paths, None if batch is None else batch.copy(), errors))
    assert [d[0] for d in decoded] == [e[0] for e in expected] and len(decoded) == 7
    assert sum(len(errors) for _, _, errors in decoded) == len(UNREADABLE)
    for (_, batch, errors), (_, reference, reference_errors) in zip(decoded, expected):
        assert errors == reference_errors
        np.testing.assert_array_equal(batch, reference)


def test_a_batch_size_beyond_what_memory_can_hold_is_one_line():
    # 5 slots x 100,000 images of 3x8192x8192 float32: 366 TiB, beyond any x86-64 process's address space.
    with pytest.raises(InputError, match=r"^batch size 100000: 5 batches of \[3, 8192, 8192\] float32 images need "
                                         r"375000\.0 GiB of memory, which the system refuses \(Cannot allocate "
                                         r"memory\); use a smaller batch size$"):
        decoding.SharedSlots(5, 100_000, (3, 8192, 8192))


def test_decoding_overlaps_the_model_only_where_it_leaves_the_workers_cores(predictor, monkeypatch):
    monkeypatch.setattr(decoding, "cores_per_process", lambda: 4)
    monkeypatch.setattr(decoding, "available_cores", lambda: 4)
    options = predictor.options
    for device, threads, workers, overlaps in [("cpu", 4, 2, False), ("cpu", 3, 2, False), ("cpu", 2, 2, True),
                                               ("cpu", 1, 2, True), ("gpu", None, 4, True)]:
        monkeypatch.setattr(predictor, "options", dataclasses.replace(options, device=device, cpu_threads=threads))
        assert decoding.should_decode_ahead(predictor, workers) is overlaps, (device, threads, workers)


def test_one_batch_is_decoded_here_without_starting_workers(predictor, folder, monkeypatch):
    def no_pool(*args, **kwargs):
        raise AssertionError("a worker pool was started for one batch")

    monkeypatch.setattr(decoding, "DecodingWorkers", no_pool)
    paths = folder[1][:4]
    predictions = [p for batch in decoding.predict_stream(predictor, paths, batch_size=4, workers=2)
                   for p in batch]
    assert [p.input for p in predictions] == paths
    with pytest.raises(AssertionError, match="a worker pool was started"):
        list(decoding.predict_stream(predictor, folder[1][:5], batch_size=4, workers=2))


def _die(to_input, path, out):
    os._exit(3)


def test_a_dead_decoding_worker_is_an_error_not_a_hang(predictor, folder, tmp_path, monkeypatch):
    monkeypatch.setattr(decoding, "decode_file", _die)  # the workers fork with it
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="a decoding worker process died"):
        run_folder(predictor, folder[0], tmp_path / "preds.jsonl", workers=2)
    assert time.monotonic() - started < 60


def child_pids(pid):
    children = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # a process that ended meanwhile
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.split("/")[2]))
    return children


@pytest.mark.slow
def test_decoding_workers_exit_when_the_main_process_is_killed(model_dir, folder):
    """SIGKILL to the main process alone (as the OOM killer sends it): its workers must not live on."""
    script = ("import sys, time\n"
              "from paddle_resnet.deploy import Predictor\n"
              "from paddle_resnet.deploy.folder_prediction import decoded_batches\n"
              "batches = decoded_batches(sys.argv[2:], 2, Predictor(sys.argv[1], backend='paddle').to_input, 2)\n"
              "next(batches)\n"
              "print('decoding', flush=True)\n"
              "time.sleep(600)\n")
    process = subprocess.Popen([sys.executable, "-c", script, model_dir, *folder[1]], env=python_env(),
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "decoding\n"
        workers = child_pids(process.pid)
        assert len(workers) == 2
    finally:
        process.kill()
        process.wait()
    deadline = time.monotonic() + 30
    while any(os.path.exists(f"/proc/{pid}") for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}")]


# ---- tools/predict.py in subprocesses -----------------------------------------------------------------------

def predict_command(model_dir, directory, output, *extra):
    return [os.path.join(ROOT, "tools", "predict.py"), "--model-dir", model_dir, "--input", directory,
            "--output", str(output), "--top-k", "3", *extra]


def python_env():
    return {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_resume_after_sigkill_in_the_middle_of_a_folder_lists_each_file_once(model_dir, predictor, tmp_path):
    directory = str(tmp_path / "photos")
    paths = write_folder(directory, 200, seed=1)
    output = tmp_path / "preds.jsonl"
    command = [sys.executable, *predict_command(model_dir, directory, output, "--batch-size", "2", "--workers", "2")]
    process = subprocess.Popen(command, env=python_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)  # its own group: the kill takes its workers too
    deadline = time.monotonic() + 120
    while count_lines(output) < 20 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    lines_at_kill = count_lines(output)
    assert process.returncode == -signal.SIGKILL and 20 <= lines_at_kill < len(paths), process.stderr.read()[-2000:]

    result = subprocess.run([sys.executable, *predict_command(model_dir, directory, output, "--resume")],
                            env=python_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    records = read_records(output)
    assert sorted(r["path"] for r in records) == sorted(paths)  # each file exactly once
    assert_same_records(sorted(records, key=lambda r: walk_order(r["path"])), expected_records(predictor, paths))
    already = int(result.stderr.split(" already in the output")[0].rsplit(", ", 1)[-1])
    assert lines_at_kill - 1 <= already <= lines_at_kill  # a line cut short by the kill is predicted again


@pytest.mark.slow
def test_two_processes_cover_each_file_once_and_rank0_merges_them(model_dir, predictor, folder, tmp_path):
    directory, paths = folder
    output = tmp_path / "out" / "preds.jsonl"
    output.parent.mkdir()
    result = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
                             "--log_dir", str(tmp_path / "log"), *predict_command(model_dir, directory, output)],
                            env=python_env(), capture_output=True, text=True, timeout=600)
    logs = "".join((tmp_path / "log" / f"workerlog.{r}").read_text() for r in range(2))
    assert result.returncode == 0, (result.stdout + logs)[-3000:]
    shards = [read_records(tmp_path / "out" / f"preds.rank{rank}.jsonl") for rank in range(2)]
    assert [[r["path"] for r in shard] for shard in shards] == [paths[0::2], paths[1::2]]
    merged = read_records(output)
    assert_same_records(merged, expected_records(predictor, paths))
    assert sorted(map(json.dumps, merged)) == sorted(json.dumps(r) for shard in shards for r in shard)
    names = os.listdir(output.parent)
    assert sorted(n for n in names if not n.startswith(".")) == ["preds.jsonl", "preds.rank0.jsonl",
                                                                 "preds.rank1.jsonl"]
    assert not [n for n in names if n.endswith(".done")]  # rank 0 removed the completion markers


# ---- hostile outputs, names, models and inputs (issue 20) -------------------------------------------------

def export_small(directory, seed=0, nan=False):
    paddle.seed(seed)
    model = build_model("resnet18", num_classes=len(LABELS), stem_type="small")
    model.eval()
    if nan:  # as a diverged run or a bad conversion leaves it
        weight = model.fc.weight
        weight.set_value(paddle.full(weight.shape, float("nan"), weight.dtype))
    export_inference(model, directory, image_shape=(3, 32, 32), eval_ops=EVAL_OPS, label_list=LABELS,
                     model_name="resnet18")
    return str(directory)


def write_png(path, seed=0):
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(path,
                                                                                                    format="PNG")


def run_top_k(predictor, inputs, output, top_k, resume=False, batch_size=4, workers=0):
    job = FolderPrediction(InputFiles(inputs), output, resume=resume)
    try:
        return job.run(predictor, top_k=top_k, batch_size=batch_size, workers=workers, progress=False)
    finally:
        job.close()


class Hang(Exception):
    pass


@pytest.fixture
def alarm():
    """``alarm(seconds)``: a Hang raised in the test if it runs longer (a FIFO read would block forever)."""
    def ring(signum, frame):
        raise Hang()
    previous = signal.signal(signal.SIGALRM, ring)
    yield signal.alarm
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("text, line", [
    ("my notes, the last line without its newline", 1),
    ("first thoughts\nsecond thoughts\n", 1),
    ('{"predict": {"model": "x", "top_k": 3, "backend": "paddle", "precision": "fp32", "device": "cpu"}}\n'
     '{"path": "a.jpg", "class_ids": [], "scores": [], "label_names": [], "error": null}\nsome notes', 3),
    ('{"path": "a.jpg", "class_ids": [], "scores": [], "label_names": [], "error": null}\n', 1),  # no header
    ("[" * 100_000 + "\n", 1),  # nested 100,000 deep: json.loads raises RecursionError
], ids=["prose_without_newline", "prose", "prose_after_records", "records_without_header", "deep_line"])
def test_resume_refuses_a_file_predict_did_not_write_and_leaves_it_untouched(folder, tmp_path, text, line):
    output = tmp_path / "notes.txt"
    output.write_text(text)
    with pytest.raises(InputError, match=rf"^--resume: {output} is not a predictions file written by predict.py "
                                         rf"\(line {line} is not a record\); choose another --output$"):
        FolderPrediction(InputFiles(folder[0]), output, resume=True)
    assert output.read_text() == text


@pytest.mark.slow
def test_resume_refuses_an_output_of_another_model_or_top_k_naming_both(predictor, model_dir, folder, tmp_path):
    directory, paths = folder
    output = tmp_path / "preds.jsonl"
    run_top_k(predictor, directory, output, top_k=3)
    before = output.read_bytes()
    with pytest.raises(InputError, match=rf"^--resume: {output} was written by another run \(top_k 3; this run: "
                                         rf"top_k 5\); resume with that run's model and options, or choose "
                                         rf"another --output$"):
        run_top_k(predictor, directory, output, top_k=5, resume=True)
    other = Predictor(export_small(tmp_path / "other", seed=1), backend="paddle", max_batch_size=4)
    ours, theirs = read_header(output)["model"], other.fingerprint()
    assert ours == predictor.fingerprint() != theirs
    with pytest.raises(InputError, match=rf"^--resume: {output} was written by another run \(model {ours[:12]} in "
                                         rf"{model_dir}; this run: model {theirs[:12]} in {tmp_path / 'other'}\); "):
        run_top_k(other, directory, output, top_k=3, resume=True)
    assert output.read_bytes() == before
    summary = run_top_k(predictor, directory, output, top_k=3, resume=True)  # the same run continues
    assert (summary.already_done, summary.predicted) == (len(paths), 0)


@pytest.mark.slow
def test_resume_knows_a_file_by_its_resolved_folder_whatever_the_spelling(predictor, folder, tmp_path,
                                                                          monkeypatch):
    directory, paths = folder
    monkeypatch.chdir(os.path.dirname(directory))
    name = os.path.basename(directory)
    output = tmp_path / "preds.jsonl"
    run_top_k(predictor, name, output, top_k=3)
    lines = output.read_bytes().splitlines(keepends=True)
    output.write_bytes(b"".join(lines[:11]))  # the header and 10 records, as a kill leaves it
    summary = run_top_k(predictor, f"./{name}/", output, top_k=3, resume=True)
    assert (summary.already_done, summary.predicted + summary.unreadable) == (10, len(paths) - 10)
    summary = run_top_k(predictor, directory + "/sub/..", output, top_k=3, resume=True)
    assert (summary.already_done, summary.predicted + summary.unreadable) == (len(paths), 0)
    records = read_records(output)
    assert len(records) == len(paths)
    assert sorted(os.path.realpath(r["path"]) for r in records) == sorted(map(os.path.realpath, paths))
    assert records[0]["path"] == os.path.join(name, paths[0][len(directory) + 1:])  # as the user spelled it
    assert records[-1]["path"].startswith(f"./{name}/")
    monkeypatch.chdir(tmp_path)  # relative paths no longer name the same files
    with pytest.raises(InputError, match=rf"^--resume: {output} was written by another run \(cwd "
                                         rf"{os.path.dirname(directory)}; this run: cwd {tmp_path}\)"):
        run_top_k(predictor, directory, output, top_k=3, resume=True)


def test_a_name_that_is_not_utf8_is_written_reversibly_and_resumed(predictor, tmp_path):
    directory = tmp_path / "photos"
    directory.mkdir()
    raw = os.fsencode(directory) + b"/\xff\xfe.png"
    write_png(raw)
    write_png(directory / "ok.png", seed=1)
    output = tmp_path / "preds.jsonl"
    run_top_k(predictor, str(directory), output, top_k=3)
    data = output.read_bytes()
    data.decode("utf-8", errors="strict")
    plain, strange = read_records(output)  # "\udcff" sorts after "o"
    assert strange["path"] == str(directory) + "/\\xff\\xfe.png" and strange["error"] is None
    assert base64.b64decode(strange["path_bytes"]) == raw
    assert plain["path"] == str(directory / "ok.png") and "path_bytes" not in plain
    summary = run_top_k(predictor, str(directory), output, top_k=3, resume=True)
    assert (summary.already_done, summary.predicted) == (2, 0)


@pytest.mark.slow
def test_a_model_with_nan_weights_is_refused_at_load_and_never_writes_nan(folder, tmp_path, capsys):
    nan_dir = export_small(tmp_path / "nan", nan=True)
    with pytest.raises(ConfigError, match=rf"^{nan_dir}: the model gives non-finite scores \(NaN or inf\) for a "
                                          rf"blank image: its weights are damaged\. Export the model again"):
        Predictor(nan_dir, backend="paddle")
    code = predict.main(["--model-dir", nan_dir, "--input", folder[0], "--workers", "0"], prog="predict.py")
    err = capsys.readouterr().err.splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith(f"predict.py: error: {nan_dir}: the model gives")

    unchecked = Predictor(nan_dir, backend="paddle", warmup=0, max_batch_size=4)
    output = tmp_path / "preds.jsonl"
    summary = run_top_k(unchecked, folder[0], output, top_k=3)
    records = read_records(output)  # parses strictly: no NaN
    assert summary.predicted == 0 and len(records) == len(folder[1])
    readable = [r for r in records if "cannot" not in r["error"] and "empty" not in r["error"]]
    assert len(readable) == 30
    for record in readable:
        assert record["error"] == f"{record['path']}: model produced non-finite scores"
        assert record["class_ids"] == record["scores"] == record["label_names"] == []


@pytest.mark.parametrize("workers", [0, 2])
def test_fifos_devices_and_symlink_loops_are_skipped_with_a_reason_never_read(predictor, tmp_path, alarm, workers):
    directory = tmp_path / "photos"
    directory.mkdir()
    write_png(directory / "b_good.png")
    os.mkfifo(directory / "a_fifo.png")
    os.symlink("/dev/zero", directory / "c_zero.png")
    os.symlink("d_loop.png", directory / "d_loop.png")
    os.symlink(".", directory / "e_folder_loop")
    output = tmp_path / "preds.jsonl"
    alarm(60)
    summary = run_top_k(predictor, str(directory), output, top_k=3, workers=workers, batch_size=1)
    alarm(0)
    errors = {os.path.basename(r["path"]): r["error"] for r in read_records(output)}
    assert errors == {
        "a_fifo.png": f"image {directory / 'a_fifo.png'} is not a regular file (a FIFO)",
        "b_good.png": None,
        "c_zero.png": f"image {directory / 'c_zero.png'} is not a regular file (a device)",
        "d_loop.png": f"cannot open image {directory / 'd_loop.png'}: Too many levels of symbolic links"}
    assert (summary.predicted, summary.unreadable) == (1, 3)


def test_a_list_of_paths_naming_a_fifo_or_a_device_is_skipped_with_a_reason(predictor, tmp_path, alarm):
    os.mkfifo(tmp_path / "fifo.png")
    os.symlink("/dev/zero", tmp_path / "zero.png")
    alarm(60)
    predictions = predictor.predict([str(tmp_path / "fifo.png"), str(tmp_path / "zero.png")])
    alarm(0)
    assert [p.error for p in predictions] == [f"image {tmp_path / 'fifo.png'} is not a regular file (a FIFO)",
                                              f"image {tmp_path / 'zero.png'} is not a regular file (a device)"]


def test_resume_refuses_an_output_that_is_a_fifo_without_blocking(folder, tmp_path, alarm):
    output = tmp_path / "preds.jsonl"
    os.mkfifo(output)
    alarm(60)
    with pytest.raises(InputError, match=rf"^{output} is not a regular file \(a FIFO\)$"):
        FolderPrediction(InputFiles(folder[0]), output, resume=True)


@pytest.mark.parametrize("option", ["--cpu-threads", "--workers"])
def test_thread_and_worker_counts_beyond_the_config_s_bound_are_a_usage_error(tmp_path, capsys, option):
    with pytest.raises(SystemExit) as stop:
        predict.main(["--model-dir", str(tmp_path), "--input", str(tmp_path), option, "1000"], prog="predict.py")
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (f"predict.py: error: argument {option}: must be an "
                                                        f"integer from {'1' if option == '--cpu-threads' else '0'} "
                                                        f"to 64, got 1000")
    with pytest.raises(ConfigError, match="^cpu_threads must be an integer from 1 to 64, got 1000$"):
        RuntimeOptions(cpu_threads=1000)  # the Python API and a -c config's cpu_num_threads


@pytest.mark.parametrize("option", ["--model-dir", "--output", "--input"])
def test_a_path_too_long_for_the_system_is_one_short_line(folder, tmp_path, capsys, option):
    arguments = {"--model-dir": str(tmp_path), "--input": folder[0], "--output": str(tmp_path / "preds.jsonl")}
    arguments[option] = str(tmp_path / ("x" * 100_000))
    code = predict.main([word for pair in arguments.items() for word in pair], prog="predict.py")
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and len(err) < 300, err[:300]
    assert err.startswith(f"predict.py: error: {option} '{tmp_path}") and err.endswith(": File name too long\n")


def test_an_input_that_matches_nothing_is_a_user_error_exit_1(tmp_path, capsys):
    missing = str(tmp_path / "missing_dir")
    assert predict.main(["--model-dir", str(tmp_path), "--input", missing], prog="predict.py") == 1
    assert capsys.readouterr().err == f"predict.py: error: --input {short_repr(missing)} matches no image file\n"


@pytest.mark.slow
def test_a_file_size_limit_during_the_write_is_one_line_and_resume_completes(model_dir, predictor, folder, tmp_path):
    directory, paths = folder
    output = tmp_path / "preds.jsonl"

    def limit_file_size():
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))  # the header and a few batches

    command = [sys.executable, *predict_command(model_dir, directory, output, "--batch-size", "2", "--workers", "0")]
    result = subprocess.run(command, env=python_env(), capture_output=True, text=True, timeout=300,
                            preexec_fn=limit_file_size)
    last = result.stderr.splitlines()[-1]
    written = int(last.split("; the ")[1].split(" records")[0]) if "; the " in last else -1
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert last == (f"predict.py: error: cannot write --output {output}: File too large; the {written} records "
                    f"written so far are kept, and the same command with --resume continues")
    assert 0 < written < len(paths) and len(read_records_whole(output)) == written
    assert output.read_bytes().endswith(b"\n")  # the batch that did not fit was taken back whole
    resumed = subprocess.run([sys.executable, *predict_command(model_dir, directory, output, "--resume")],
                             env=python_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_records(read_records(output), expected_records(predictor, paths))  # each file once


def read_records_whole(path):
    """The records of the lines that end in a newline (a write cut short leaves a last line without it)."""
    lines = path.read_bytes().split(b"\n")[1:-1]
    return [json.loads(line) for line in lines]


@pytest.mark.slow
def test_stdout_mode_prints_a_name_that_is_not_utf8_under_a_strict_utf8_stdout(model_dir, tmp_path):
    directory = tmp_path / "photos"
    directory.mkdir()
    write_png(os.fsencode(directory) + b"/\xff\xfe.png")
    out = tmp_path / "out.json"
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "predict.py"), "--model-dir", model_dir,
                             "--input", str(directory), "--top-k", "2", "--json", str(out)],
                            env={**python_env(), "PYTHONIOENCODING": "utf-8"}, capture_output=True, timeout=300)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stdout.decode("utf-8").startswith(f"{directory}/\\xff\\xfe.png: digit_")
    (record,) = json.loads(out.read_bytes().decode("utf-8"))
    assert record["input"] == f"{directory}/\\xff\\xfe.png"
    assert base64.b64decode(record["input_bytes"]) == os.fsencode(directory) + b"/\xff\xfe.png"
