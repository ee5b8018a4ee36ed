import json
import subprocess
import sys

import pytest

from tests.conftest import SD_V1_4_CONFIG


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "delta_diff.architecture", *args], capture_output=True, text=True, timeout=120
    )


def test_preset_prints_bk_sdm_tiny_numbers():
    result = run_cli("--unet-config", str(SD_V1_4_CONFIG), "--preset", "bk-sdm-tiny")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["params"] == 323_384_964 and report["teacher_params"] == 859_520_964
    assert any("innermost stage" in line for line in report["removed"])
    assert any("mid block" in line for line in report["removed"])
    assert report["space_size"] == 512_000


def test_genome_by_keys_and_output_config(tmp_path):
    out = tmp_path / "child.json"
    result = run_cli("--unet-config", str(SD_V1_4_CONFIG), "--genome", "mid", "--output-config", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["removed_units"] == ["mid"] and report["params"] < report["teacher_params"]
    assert json.loads(out.read_text())["mid_block_type"] is None


@pytest.mark.parametrize(
    "args,message",
    [
        (["--preset", "bk-sdm-huge"], "invalid choice"),
        (["--genome", "0101"], "genome has 4 genes"),
        (["--genome", "pair:7.1"], "unknown unit"),
        (["--genome", "0120"], "genome '0120' holds 2: a bit string may hold only 0 (keep) and 1 (remove)"),
        (["--preset", "bk-sdm-small", "--output-config", "/"], "--output-config / is a folder; give a file name"),
        (["--preset", "bk-sdm-small", "--output-config", "/nowhere/x.json"], "--output-config /nowhere/x.json: cannot "
                                                                             "write it (No such file or directory)"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message):
    result = run_cli("--unet-config", str(SD_V1_4_CONFIG), *args)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_missing_config_exits_2(tmp_path):
    result = run_cli("--unet-config", str(tmp_path / "missing.json"))
    assert result.returncode == 2 and "no U-Net config" in result.stderr


def test_non_sd_family_config_exits_2(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"_class_name": "UNet2DModel", "down_block_types": []}))
    result = run_cli("--unet-config", str(path))
    assert result.returncode == 2 and "not an SD-family" in result.stderr
