"""Predicting a folder into JSON Lines (paddle_resnet/deploy/batch_predict.py, predict.py --output): order,
unreadable files, resume after a kill, one writer per output, dead workers, and two processes under
paddle.distributed.launch. A small-stem ResNet-18 at 32x32 keeps it fast."""
import dataclasses
import glob
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest
import yaml
from PIL import Image

from paddle_resnet import build_model
from paddle_resnet.cli import predict
from paddle_resnet.deploy import Predictor, export_inference
from paddle_resnet.deploy import batch_predict
from paddle_resnet.deploy.batch_predict import FolderPrediction, InputFiles, walk_images, walk_order
from paddle_resnet.errors import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABELS = [f"digit_{i}" for i in range(10)]
EVAL_OPS = [{"DecodeImage": {}}, {"ResizeImage": {"size": 32}}, {"NormalizeImage": {"order": ""}}, "ToCHWImage"]
UNREADABLE = {"a_corrupt.png": b"\x89PNG\r\n\x1a\n" + bytes(40), "b_empty.jpg": b"", "sub/c_text.jpg": b"text\n"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    paddle.seed(0)
    model = build_model("resnet18", num_classes=len(LABELS), stem_type="small")
    model.eval()
    directory = tmp_path_factory.mktemp("resnet18_small")
    export_inference(model, directory, image_shape=(3, 32, 32), eval_ops=EVAL_OPS, label_list=LABELS,
                     model_name="resnet18")
    return str(directory)


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


def read_records(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


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
    partial.write_bytes(b"".join(lines[:11]) + lines[11][:25])  # as a kill in the middle of a write leaves it
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


def test_resume_refuses_a_file_that_is_not_predictions(folder, tmp_path):
    output = tmp_path / "notes.jsonl"
    output.write_text('{"path": "a.jpg"}\nsome notes\n')
    with pytest.raises(InputError, match=f"^{output} line 2 is not a prediction record of predict.py; choose "
                                         f"another --output$"):
        FolderPrediction(InputFiles(folder[0]), output, resume=True)


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
def test_both_decoding_schedules_give_the_main_process_s_batches_and_errors(predictor, folder, ahead):
    directory, paths = folder
    to_input = predictor.to_input
    expected = list(batch_predict.decoded_batches(paths, 5, to_input, 0))
    # With workers a batch is a view of a shared slot, valid until the next one is asked for: copied here,
    # after a pause in which the workers finish every batch in flight (one sharing this slot would show).
    decoded = []
    for batch_paths, batch, errors in batch_predict.decoded_batches(paths, 5, to_input, 2, ahead):
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
        batch_predict.SharedSlots(5, 100_000, (3, 8192, 8192))


def test_decoding_overlaps_the_model_only_where_it_leaves_the_workers_cores(predictor, monkeypatch):
    monkeypatch.setattr(batch_predict, "cores_per_process", lambda: 4)
    monkeypatch.setattr(batch_predict, "available_cores", lambda: 4)
    options = predictor.options
    for device, threads, workers, overlaps in [("cpu", 4, 2, False), ("cpu", 3, 2, False), ("cpu", 2, 2, True),
                                               ("cpu", 1, 2, True), ("gpu", None, 4, True)]:
        monkeypatch.setattr(predictor, "options", dataclasses.replace(options, device=device, cpu_threads=threads))
        assert batch_predict.decoding_overlaps(predictor, workers) is overlaps, (device, threads, workers)


def test_folder_preprocessing_is_the_predictor_s_for_an_export_that_leaves_the_size_open(model_dir, folder,
                                                                                        tmp_path):
    """An export made before exports fixed the input size: the Predictor adds the resize and crop; the
    decoding workers must run that same preprocessing, not inference.yml's ops as written."""
    old = tmp_path / "old_export"
    shutil.copytree(model_dir, old)
    config = yaml.safe_load((old / "inference.yml").read_text())
    config["preprocess"]["transform_ops"] = [{"DecodeImage": {}}, {"NormalizeImage": {"order": ""}}, "ToCHWImage"]
    (old / "inference.yml").write_text(yaml.safe_dump(config))
    predictor = Predictor(old, backend="paddle", max_batch_size=4)
    directory, paths = folder  # JPEGs of 24-64 pixels a side
    expected = expected_records(predictor, paths)
    assert sum(r["error"] is None for r in expected) == 30
    for workers in (0, 2):
        output = tmp_path / f"preds_{workers}.jsonl"
        summary = run_folder(predictor, directory, output, workers=workers)
        assert (summary.predicted, summary.unreadable) == (30, 3)
        assert_same_records(read_records(output), expected)


def test_one_batch_is_decoded_here_without_starting_workers(predictor, folder, monkeypatch):
    def no_pool(*args, **kwargs):
        raise AssertionError("a worker pool was started for one batch")

    monkeypatch.setattr(batch_predict, "DecodingWorkers", no_pool)
    paths = folder[1][:4]
    predictions = [p for batch in batch_predict.predict_stream(predictor, paths, batch_size=4, workers=2)
                   for p in batch]
    assert [p.input for p in predictions] == paths
    with pytest.raises(AssertionError, match="a worker pool was started"):
        list(batch_predict.predict_stream(predictor, folder[1][:5], batch_size=4, workers=2))


def _die(to_input, path, out):
    os._exit(3)


def test_a_dead_decoding_worker_is_an_error_not_a_hang(predictor, folder, tmp_path, monkeypatch):
    monkeypatch.setattr(batch_predict, "decode_file", _die)  # the workers fork with it
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


def test_decoding_workers_exit_when_the_main_process_is_killed(model_dir, folder):
    """SIGKILL to the main process alone (as the OOM killer sends it): its workers must not live on."""
    script = ("import sys, time\n"
              "from paddle_resnet.deploy import Predictor\n"
              "from paddle_resnet.deploy.batch_predict import decoded_batches\n"
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
