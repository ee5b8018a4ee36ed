"""The project hooks' cheap checks, on their own (their wiring into `kedro run` is tested in tests/pipelines)."""

import json

import pytest

from delta_diff.hooks import _check_student

from tests.conftest import tiny_unet_config


def two_level_teacher(tmp_path):
    config = tiny_unet_config(block_out_channels=[16, 32], down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
                              up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"])
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_a_student_preset_the_teacher_cannot_reach_is_named(tmp_path):
    teacher = two_level_teacher(tmp_path)
    with pytest.raises(ValueError, match=r"path.student.preset is 'bk-sdm-tiny', which the teacher .* cannot reach: "
                                         r"preset 'bk-sdm-tiny' removes the innermost stage"):
        _check_student(teacher, "path", {"preset": "bk-sdm-tiny", "genome": None})
    _check_student(teacher, "distill_stage", {"preset": "bk-sdm-small", "genome": None})  # this one it can
