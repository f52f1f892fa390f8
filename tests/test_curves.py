"""The training curves' per-step series: smoothing, the bound on their length, and resume."""
import json

import pytest

from paddle_resnet.engine.curves import MAX_STEP_POINTS, SERIES_FILE, TrainingCurves, smoothed


def test_smoothing_is_a_debiased_moving_average():
    assert smoothed([4.0]) == [4.0]
    assert smoothed([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])
    assert smoothed([0.0, 1.0], weight=0.5) == pytest.approx([0.0, 0.5 / 0.75])


def test_steps_are_thinned_beyond_the_bound_and_cut_back_on_resume(tmp_path, monkeypatch):
    monkeypatch.setattr("paddle_resnet.engine.curves._plot", lambda series, path: open(path, "wb").close())
    curves = TrainingCurves(str(tmp_path))
    for step in range(MAX_STEP_POINTS + 1):
        curves.add_step(step, step / 100, 1.0, 0.1)
    assert len(curves.steps) == MAX_STEP_POINTS // 2 + 1 and curves.stride == 2
    assert [p["step"] for p in curves.steps[:3]] == [0, 2, 4]
    curves.add_step(MAX_STEP_POINTS + 1, 0.0, 1.0, 0.1)  # not on the stride
    assert curves.steps[-1]["step"] == MAX_STEP_POINTS
    curves.add(1, 1.0, None, 0.1)
    written = json.loads((tmp_path / SERIES_FILE).read_text())["steps"]
    assert written["step"][-1] == MAX_STEP_POINTS and len(written["loss"]) == len(curves.steps)
    resumed = TrainingCurves(str(tmp_path), first_epoch=1, first_step=100)
    assert [p["step"] for p in resumed.steps] == list(range(0, 101, 2))
