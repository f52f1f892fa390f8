"""One line and exit code 1 for what convert_weights, summary, split_dataset and prepare_data used to trace back on,
or did silently wrong (issue 20)."""
import importlib
import os

import paddle
import pytest
from PIL import Image

from paddle_resnet import build_model
from paddle_resnet.models.summary import summarize


def run_main(capsys, tool, *argv):
    """(exit code, stderr lines) of ``<tool>.py ARGV`` run in this process."""
    main = importlib.import_module(f"paddle_resnet.cli.{tool}").main
    try:
        main(list(argv), prog=f"{tool}.py")
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err.splitlines()


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "r18.pdparams"
    paddle.save(build_model("resnet18", num_classes=3).state_dict(), str(path))
    return path


@pytest.mark.parametrize("count", ["-5", "1000000000"])
@pytest.mark.slow
def test_convert_weights_refuses_a_class_count_out_of_range(tmp_path, capsys, weights, count):
    dst = tmp_path / "out.pdparams"
    code, err = run_main(capsys, "convert_weights", "--arch", "resnet18", "--src", str(weights), "--dst", str(dst),
                         "--num-classes", count)
    assert (code, err) == (1, [f"convert_weights.py: error: num_classes must be an integer from 0 (no classifier "
                               f"head) to 100,000, got {count}"])
    assert not dst.exists()


@pytest.mark.parametrize("argv, message", [
    (["--input-size", "0"], "input size (pixels) must be an integer from 1 to 2048, got 0"),
    (["--input-size", "100000"], "input size (pixels) must be an integer from 1 to 2048, got 100000"),
    (["--model-table", "--input-size", "100000"], "input size (pixels) must be an integer from 1 to 2048, got 100000"),
    (["--num-classes", "1000000000"], "num_classes must be an integer from 0 (no classifier head) to 100,000, "
                                      "got 1000000000"),
])
def test_summary_refuses_sizes_it_cannot_run_in_one_line(capsys, argv, message):
    assert run_main(capsys, "summary", *argv) == (1, [f"summary.py: error: {message}"])


def test_summary_runs_at_its_smallest_input_size():
    report = summarize("resnet18", 1, 0)  # every model pads its convolutions down to 1x1
    assert report["total_params"] == 11_186_112 and report["flops"] > 0


@pytest.mark.parametrize("argv, message", [
    (["--limit-train", "-5"], "limit_train must be an integer >= 0, got -5"),
    (["--limit-eval", "-1"], "limit_eval must be an integer >= 0, got -1"),
    (["--workers", "0"], "workers must be an integer >= 1, got 0"),
])
def test_prepare_data_refuses_negative_limits_before_writing(tmp_path, capsys, argv, message):
    out = tmp_path / "m"
    code, err = run_main(capsys, "prepare_data", "mnist", "--out", str(out), *argv)
    assert (code, err) == (1, [f"prepare_data.py: error: {message}"])
    assert not out.exists()


def test_prepare_data_out_a_file_is_one_line(tmp_path, capsys):
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    code, err = run_main(capsys, "prepare_data", "mnist", "--out", str(out))
    assert (code, err) == (1, [f"prepare_data.py: error: output folder {out} is a file, not a folder"])
    assert out.read_text() == "mine"


def image_folder(root, names_per_class):
    for label, names in names_per_class.items():
        folder = os.path.join(os.fsencode(root), label.encode())
        os.makedirs(folder, exist_ok=True)
        for name in names:
            Image.new("RGB", (4, 4)).save(os.path.join(folder, name), format="PNG")
    return str(root)


def test_split_dataset_refuses_each_bad_argument_in_one_line(tmp_path, capsys):
    src = image_folder(tmp_path / "src", {"a": [b"0.png", b"1.png"], "b": [b"0.png"]})
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    cases = [
        (["--src", src, "--val-ratio", "1.5"], "val_ratio must be between 0 and 1 (exclusive), got 1.5"),
        (["--src", src, "--val-ratio", "nan"], "val_ratio must be between 0 and 1 (exclusive), got nan"),
        (["--src", str(tmp_path / "missing")], f"source folder {tmp_path / 'missing'} does not exist"),
        (["--src", src, "--out", str(tmp_path / "file")], f"output folder {tmp_path / 'file'} is a file, not a folder"),
        (["--src", str(tmp_path / "file")], f"source {tmp_path / 'file'} is not a folder of class subfolders"),
        (["--src", str(tmp_path / "empty")], f"{tmp_path / 'empty'} has no class subfolders (expected "
                                             f"{tmp_path / 'empty'}/<class>/<image>)"),
    ]
    for argv, message in cases:
        assert run_main(capsys, "split_dataset", *argv) == (1, [f"split_dataset.py: error: {message}"]), argv
    assert not os.path.exists(os.path.join(src, "train_list.txt"))


def test_split_dataset_skips_names_that_are_not_utf8_and_says_so(tmp_path, capsys):
    src = image_folder(tmp_path / "src", {"a": [b"0.png", b"caf\xe9.png"], "b": [b"0.png", b"1.png"]})
    code, err = run_main(capsys, "split_dataset", "--src", src, "--val-ratio", "0.4")
    assert code == 0
    assert err == ["split_dataset.py: warning: skipped 1 files whose names are not UTF-8, which list files cannot "
                   "hold, e.g. b'a/caf\\xe9.png': rename them to list them",
                   "split_dataset.py: warning: the val split has fewer than 10 images in 2 of 2 classes: too few "
                   "to tell epochs apart when choosing best; a larger --val-ratio separates them"]
    with open(os.path.join(src, "train_list.txt"), encoding="utf-8") as f:
        train = f.read().splitlines()
    with open(os.path.join(src, "val_list.txt"), encoding="utf-8") as f:
        val = f.read().splitlines()
    assert sorted(train + val) == ["a/0.png 0", "b/0.png 1", "b/1.png 1"]


def test_split_dataset_refuses_a_class_folder_that_is_not_utf8(tmp_path, capsys):
    src = image_folder(tmp_path / "src", {"a": [b"0.png"]})
    os.makedirs(os.path.join(os.fsencode(src), b"\xff"))
    code, err = run_main(capsys, "split_dataset", "--src", src)
    assert (code, err) == (1, [f"split_dataset.py: error: class folder '\\udcff' in {src} has a name that is not "
                               f"UTF-8, which list files and class_indices.json cannot hold: rename it"])
    assert not os.path.exists(os.path.join(src, "train_list.txt"))
