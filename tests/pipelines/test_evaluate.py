import pytest
from pydantic import ValidationError

from delta_diff.pipelines.evaluate.nodes import EvaluateParams, hps_v2_setup
from delta_diff.sd import DevicePolicy


def test_a_missing_hps_checkpoint_fails_at_validation_naming_the_key():
    with pytest.raises(ValidationError, match="evaluate.hps_checkpoint '/nowhere/HPS_v2_compressed.pt' is not a file"):
        EvaluateParams(hps_checkpoint="/nowhere/HPS_v2_compressed.pt")


def test_hps_v2_is_unavailable_with_its_reason(tmp_path):
    scorer, result = hps_v2_setup(EvaluateParams(), {"hps_benchmark": {"available": True}}, DevicePolicy())
    assert scorer is None and not result.available and "evaluate.hps_checkpoint" in result.reason
    checkpoint = tmp_path / "HPS_v2_compressed.pt"
    checkpoint.write_bytes(b"")
    absent = {"hps_benchmark": {"available": False, "reason": "no folder data/01_raw/hps_benchmark"}}
    scorer, result = hps_v2_setup(EvaluateParams(hps_checkpoint=str(checkpoint)), absent, DevicePolicy())
    assert scorer is None and "benchmark prompts absent: no folder" in result.reason
