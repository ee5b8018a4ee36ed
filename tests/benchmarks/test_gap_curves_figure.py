"""Every world's gap curve in one figure (benchmarks/gap_curves_figure.py): the ratios it plots and the plateaus it
prints come from the curves' own records; a file that is not a curve is named."""

import importlib.util
import json

import pytest

from tests.conftest import PROJECT_ROOT

spec = importlib.util.spec_from_file_location("gap_curves_figure", PROJECT_ROOT / "benchmarks" / "gap_curves_figure.py")
gap_curves_figure = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gap_curves_figure)


def curve_record(teacher_eval, points):
    """points: (seed, steps, eval score) as gap_curve.py records them."""
    return {"teacher_score": {"eval": {"score": teacher_eval}, "search": {"score": 1.0}},
            "params": {"teacher": 8_000_000, "student": 3_000_000},
            "students": [{"seed": seed, "steps": steps, "eval_score": score, "search_score": score}
                         for seed, steps, score in points]}


def test_each_snapshot_is_every_seeds_score_over_the_teachers_and_the_plateau_their_last_means():
    record = curve_record(0.8, [(0, 300, 0.4), (1, 300, 0.6), (0, 150, 0.2), (1, 150, 0.2),
                                (0, 450, 0.72), (1, 450, 0.8), (0, 600, 0.8), (1, 600, 0.8)])
    curve = gap_curves_figure.world_curve(record)
    assert list(curve) == [150, 300, 450, 600]  # sorted by steps, whatever the record's order
    assert curve[300] == pytest.approx([0.5, 0.75])
    assert gap_curves_figure.plateau(curve) == pytest.approx((0.625 + 0.95 + 1.0) / 3)


def test_the_figure_is_written_with_one_line_per_world_and_the_bar(tmp_path, capsys):
    for world, teacher in (("world_v3", 0.9), ("world_v10", 1.0)):
        (tmp_path / world).mkdir()
        (tmp_path / world / "gap_curve.json").write_text(json.dumps(
            curve_record(teacher, [(s, steps, 0.9) for s in (0, 1) for steps in (150, 300, 450)])))
    out = tmp_path / "figure" / "gap_curves.png"
    paths = [tmp_path / "world_v10/gap_curve.json", tmp_path / "world_v3/gap_curve.json"]
    assert gap_curves_figure.main([*map(str, paths), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.index("world_v3: plateau (last 3 snapshots) 1.000") < printed.index("world_v10: plateau (last 3 snapshots) 0.900")
    assert out.stat().st_size > 0 and not list(out.parent.glob("*.partial.png"))
    curves = {w: (json.loads(p.read_text()), gap_curves_figure.world_curve(json.loads(p.read_text())))
              for w, p in (("world_v3", paths[1]), ("world_v10", paths[0]))}
    axes = gap_curves_figure.gap_curves_figure(curves).axes[0]
    labels = [line.get_label() for line in axes.get_lines()]
    assert labels[0].startswith("world_v3: teacher 8.0 M, Tiny 3.00 M, 2 seeds") and "bar (0.95" in labels[-1]


def test_a_file_that_is_not_a_gap_curve_is_named_and_nothing_is_written(tmp_path, capsys):
    (tmp_path / "world_v4").mkdir()
    bad = tmp_path / "world_v4" / "gap_curve.json"
    bad.write_text(json.dumps({"students": []}))
    out = tmp_path / "gap_curves.png"
    assert gap_curves_figure.main([str(bad), "--out", str(out)]) == 2
    assert str(bad) in capsys.readouterr().err and not out.exists()
