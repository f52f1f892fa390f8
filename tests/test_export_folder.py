"""Export into folders it did not make: a failed export leaves nothing, a handed-over folder loses nothing."""
import os

import paddle
import pytest

from conftest import run_tool
from engine_fixtures import EVAL_OPS, make_image_folder, tiny_config, write_config
from paddle_resnet import build_model
from paddle_resnet.deploy import export as export_module
from paddle_resnet.deploy import export_inference


def failing_export(save_dir, monkeypatch):
    def cannot_trace(*args):
        raise RuntimeError("the model does not trace")
    monkeypatch.setattr(export_module, "_save_paddle_program", cannot_trace)
    with pytest.raises(RuntimeError, match="does not trace"):
        export_inference(object(), save_dir, image_shape=(3, 16, 16), eval_ops=EVAL_OPS)


def test_a_failed_export_leaves_no_folder_it_made(tmp_path, monkeypatch):
    failing_export(tmp_path / "inference", monkeypatch)
    assert os.listdir(tmp_path) == []


def test_a_failed_export_keeps_a_folder_it_did_not_make(tmp_path, monkeypatch):
    (tmp_path / "inference").mkdir()
    failing_export(tmp_path / "inference", monkeypatch)
    assert os.listdir(tmp_path) == ["inference"] and os.listdir(tmp_path / "inference") == []


@pytest.mark.slow
def test_export_into_a_handed_over_folder_touches_nothing_outside_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    save_dir = tmp_path / "handed" / "inference"
    (save_dir / ".evil.commit").mkdir(parents=True)
    (save_dir / ".evil.commit" / ".remove").write_text(f"../../victim.txt\n{victim}\n")
    (save_dir / ".inference.commit").mkdir()
    (save_dir / ".inference.commit" / ".remove").write_text("../../victim.txt\n../victim.txt\n")
    weights = tmp_path / "w.pdparams"
    paddle.save(build_model("resnet18", num_classes=3).state_dict(), str(weights))
    folder = make_image_folder(tmp_path / "images", per_class=1)
    config = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, folder, folder, Global={
        "pretrained_model": str(weights), "save_inference_dir": str(save_dir)}))
    result = run_tool("export_model.py", "-c", config, "--no-onnx")
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "keep me"
    # the export finishes only its own unit; the other one is left as it was
    assert sorted(os.listdir(save_dir)) == [".evil.commit", "inference.json", "inference.pdiparams", "inference.yml"]
    assert (save_dir / ".evil.commit" / ".remove").is_file()


@pytest.mark.slow
def test_sigterm_during_an_export_leaves_no_staging_folder_and_exits_143(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    from conftest import ROOT
    weights = tmp_path / "w.pdparams"
    paddle.save(build_model("resnet50", num_classes=3).state_dict(), str(weights))
    folder = make_image_folder(tmp_path / "images", per_class=1)
    save_dir = tmp_path / "inference"
    config = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, folder, folder, Arch={"name": "resnet50"},
                          Global={"pretrained_model": str(weights), "save_inference_dir": str(save_dir)}))
    proc = subprocess.Popen([sys.executable, "tools/export_model.py", "-c", config, "--no-onnx"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (save_dir.is_dir() and any(".staging-" in name for name in os.listdir(save_dir))):
        assert proc.poll() is None and time.monotonic() < deadline, "the export never staged"
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert not save_dir.exists() or os.listdir(save_dir) == []
