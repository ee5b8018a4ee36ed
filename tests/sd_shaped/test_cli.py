import subprocess
import sys

import pytest

pytest.importorskip("hpsv2")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "delta_diff.sd_shaped", *args], capture_output=True, text=True,
                          timeout=300)


def test_cached_build_and_random_hps_checkpoint(sd_shaped_pipeline_dir, tmp_path):
    checkpoint = tmp_path / "hps" / "HPS_random.pt"
    result = run_cli("--variant", "sd-v1-4", "--width-scale", "0.125", "--out", str(sd_shaped_pipeline_dir),
                     "--hps-checkpoint", str(checkpoint))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "already holds this build" in lines[0] and lines[-1] == str(sd_shaped_pipeline_dir)
    assert "ViT-S-32-alt" in result.stdout and checkpoint.is_file()


@pytest.mark.parametrize("args,message", [
    (["--variant", "sd-v3"], "invalid choice: 'sd-v3'"),
    (["--variant", "sd-v1-4", "--width-scale", "0"], r"outside (0, 1]"),
    (["--variant", "sd-v1-4", "--width-scale", "2"], r"outside (0, 1]"),
    (["--variant", "sd-v1-4", "--seed", "-3"], "not a non-negative integer"),
    (["--variant", "sd-v1-4", "--prediction-type", "sample"], "invalid choice: 'sample'"),
    (["--variant", "sd-v1-4", "--hps-model", "ViT-B-32"], "--hps-model needs --hps-checkpoint"),
    (["--variant", "sd-v1-4", "--hps-checkpoint", "h.pt", "--hps-model", "ViT-Q-99"], "no model config 'ViT-Q-99'"),
])
def test_bad_input_exits_2_with_one_line(args, message, tmp_path):
    result = run_cli(*args, "--out", str(tmp_path / "pipeline"))
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    assert not (tmp_path / "pipeline").exists()


def test_out_that_is_a_file_exits_2(tmp_path):
    target = tmp_path / "model_index.json"
    target.write_text("{}")
    result = run_cli("--variant", "sd-v1-4", "--out", str(target))
    assert result.returncode == 2 and "is a file" in result.stderr and len(result.stderr.splitlines()) == 1
