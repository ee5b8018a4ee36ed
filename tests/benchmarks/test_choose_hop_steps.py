"""The rule that picks the claim's steps per hop from the baseline's curve (fixed before the curve is seen)."""

import importlib.util
import json

import pytest

from tests.conftest import PROJECT_ROOT

spec = importlib.util.spec_from_file_location("choose_hop_steps", PROJECT_ROOT / "benchmarks" / "choose_hop_steps.py")
choose_hop_steps = importlib.util.module_from_spec(spec)
spec.loader.exec_module(choose_hop_steps)


def summary(points):
    return {str(steps): {"search_score_over_teacher_mean": search, "eval_score_over_teacher_mean": 0.0,
                         "eval_score_over_teacher_std": None, "n_seeds": 1} for steps, search in points}


def test_the_fewest_steps_within_the_margin_of_the_best_point_are_chosen():
    points = [(150, 0.70), (300, 0.80), (450, 0.85), (600, 0.86), (750, 0.855)]
    assert choose_hop_steps.choose(summary(points), within=0.02) == 450
    assert choose_hop_steps.choose(summary(points), within=0.0) == 600


def test_the_choice_is_written_into_the_design(tmp_path, monkeypatch):
    curve, design = tmp_path / "curve.json", tmp_path / "design.yml"
    curve.write_text(json.dumps({"summary": summary([(150, 0.5), (300, 0.9)])}))
    design.write_text("params:\n    distill_stage.stage.distillation.steps: 300  # S\n")
    monkeypatch.setattr("sys.argv", ["x", str(curve), "--design", str(design)])
    choose_hop_steps.main()
    assert "distill_stage.stage.distillation.steps: 300  # S" in design.read_text()
    curve.write_text(json.dumps({"summary": summary([(150, 0.9), (300, 0.9)])}))
    choose_hop_steps.main()
    assert "distill_stage.stage.distillation.steps: 150  # S" in design.read_text()
    design.write_text("params: {}\n")
    with pytest.raises(SystemExit, match="expected one"):
        choose_hop_steps.main()
