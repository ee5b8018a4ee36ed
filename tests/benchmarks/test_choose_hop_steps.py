"""The rule that picks the claim's steps per hop from the baseline's curve (fixed before the curve is seen)."""

import importlib.util
import json

import pytest

from tests.conftest import PROJECT_ROOT

spec = importlib.util.spec_from_file_location("choose_hop_steps", PROJECT_ROOT / "benchmarks" / "choose_hop_steps.py")
choose_hop_steps = importlib.util.module_from_spec(spec)
spec.loader.exec_module(choose_hop_steps)


def summary(points, spread=0.01, n_seeds=3):
    return {str(steps): {"search_score_over_teacher_mean": search, "eval_score_over_teacher_mean": 0.0,
                         "eval_score_over_teacher_std": None, "search_score_over_teacher_std": spread,
                         "n_seeds": n_seeds} for steps, search in points}


def test_the_fewest_steps_within_the_margin_of_the_best_point_are_chosen():
    points = [(150, 0.70), (300, 0.80), (450, 0.85), (600, 0.86), (750, 0.855)]
    assert choose_hop_steps.choose(summary(points), within=0.02) == 450
    assert choose_hop_steps.choose(summary(points), within=0.0) == 600


def test_an_s_at_the_curves_end_is_written_with_a_warning_that_no_plateau_was_measured(tmp_path, monkeypatch,
                                                                                       capsys):
    # world v7's curve: its best search score was its last point, so S was the curve's end and the baseline went
    # on rising in the claim runs; a chooser that says nothing lets that pass as "near the plateau"
    curve, design = tmp_path / "curve.json", tmp_path / "design.yml"
    curve.write_text(json.dumps({"summary": summary([(150, 0.70), (300, 0.80), (450, 0.86)])}))
    design.write_text("params:\n    distill_stage.stage.distillation.steps: 111  # S\n")
    monkeypatch.setattr("sys.argv", ["x", str(curve), "--design", str(design)])
    choose_hop_steps.main()
    assert "steps: 450" in design.read_text()
    assert "warning: S = 450 is the curve's last point (the last interval still changed the search score by " \
           "+0.060" in capsys.readouterr().err
    curve.write_text(json.dumps({"summary": summary([(150, 0.70), (300, 0.85), (450, 0.86)])}))
    choose_hop_steps.main()
    assert "steps: 300" in design.read_text() and "warning" not in capsys.readouterr().err


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


@pytest.mark.parametrize("points, spread, message", [
    ([(150, 0.90), (300, 0.97)], 0.01, "the baseline scores 0.970 of the teacher"),
    ([(150, 0.80), (300, 0.90)], 0.12, "the spread over seeds (0.120) is not smaller than the gap"),
    ([(150, 0.80), (300, 0.90)], None, "the spread over seeds is unknown"),
])
def test_a_world_without_a_gap_at_s_is_refused_and_the_design_is_left_alone(tmp_path, monkeypatch, capsys,
                                                                              points, spread, message):
    curve, design = tmp_path / "curve.json", tmp_path / "design.yml"
    curve.write_text(json.dumps({"summary": summary(points, spread)}))
    design.write_text("params:\n    distill_stage.stage.distillation.steps: 111  # S\n")
    monkeypatch.setattr("sys.argv", ["x", str(curve), "--design", str(design)])
    with pytest.raises(SystemExit) as stop:
        choose_hop_steps.main()
    assert stop.value.code == 3
    error = capsys.readouterr().err
    assert "error: no knowledge gap to test at S = 300" in error and message in error
    assert "steps: 111" in design.read_text()
    monkeypatch.setattr("sys.argv", ["x", str(curve), "--design", str(design), "--max-share", "1"])
    choose_hop_steps.main()
    assert "steps: 300" in design.read_text()


def test_an_unfinished_curve_is_refused_naming_the_file(tmp_path, monkeypatch, capsys):
    curve = tmp_path / "curve.json"
    curve.write_text(json.dumps({"students": [{"seed": 0, "steps": 150}]}))
    monkeypatch.setattr("sys.argv", ["x", str(curve)])
    with pytest.raises(SystemExit) as stop:
        choose_hop_steps.main()
    assert stop.value.code == 2 and f"error: {curve} has no summary" in capsys.readouterr().err
