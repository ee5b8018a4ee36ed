"""benchmarks/claim.sh refuses a world it cannot run before any hour-long step starts."""

import subprocess

import pytest

from tests.conftest import PROJECT_ROOT


def _claim(*args: str, cwd=PROJECT_ROOT) -> subprocess.CompletedProcess:
    # PYTHON=false: were a check to let the script through, its first step would fail instead of running for hours
    return subprocess.run(["sh", "benchmarks/claim.sh", *args], cwd=cwd, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": "false"}, timeout=60)


def test_without_a_world_it_prints_its_usage():
    result = _claim()
    assert result.returncode != 0 and "usage: sh benchmarks/claim.sh <world env" in result.stderr


@pytest.mark.parametrize("env", ["world_v9", "world_v3"])
def test_a_world_without_an_experiment_design_is_refused_naming_the_file(env):
    result = _claim(env)
    assert result.returncode == 2, result.stderr
    assert f"error: conf/{env}/experiment_claim.yml is missing: write the world's experiment design" in result.stderr


def test_a_world_whose_teacher_is_not_trained_is_refused_naming_the_command(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "claim.sh").write_text((PROJECT_ROOT / "benchmarks" / "claim.sh").read_text())
    (tmp_path / "conf" / "world_v7").mkdir(parents=True)
    (tmp_path / "conf" / "world_v7" / "experiment_claim.yml").write_text("experiment: {}\n")
    result = _claim("world_v7", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "error: data/06_models/embedded_teacher_v7/model_index.json is missing" in result.stderr
    assert "kedro run --env world_v7 --pipelines teacher" in result.stderr


def test_a_world_whose_teacher_failed_its_competence_check_is_refused(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "claim.sh").write_text((PROJECT_ROOT / "benchmarks" / "claim.sh").read_text())
    (tmp_path / "conf" / "world_v7").mkdir(parents=True)
    (tmp_path / "conf" / "world_v7" / "experiment_claim.yml").write_text("experiment: {}\n")
    for folder, name in (("embedded_teacher_v7", "model_index.json"), ("world_scorer_v7", "config.json")):
        (tmp_path / "data" / "06_models" / folder).mkdir(parents=True)
        (tmp_path / "data" / "06_models" / folder / name).write_text("{}")
    report = tmp_path / "data" / "08_reporting" / "teacher_v7_competence.json"
    report.parent.mkdir(parents=True)
    for text in (None, '{"passed": false, "failures": ["left colour 0.80 < 0.9"]}'):
        if text is not None:
            report.write_text(text)
        result = _claim("world_v7", cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "teacher_v7_competence.json does not say the teacher passed its competence check" in result.stderr
    report.write_text('{"passed": true}')
    result = _claim("world_v7", cwd=tmp_path)  # let through: its first step is PYTHON=false, which fails
    assert result.returncode == 1 and "competence" not in result.stderr
