"""benchmarks/park_checkpoints.sh: the newest whole checkpoint of a git-ignored folder is staged for commit, older
parked ones are unstaged (also when the training already pruned them from disk), and nothing is staged from a
folder without a whole checkpoint."""

import shutil
import subprocess

import pytest

from tests.conftest import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "benchmarks" / "park_checkpoints.sh"


def git(repo, *args) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def checkpoint(folder, step, whole=True):
    path = folder / f"step-{step:06d}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"weights")
    if whole:
        (path / "meta.json").write_text('{"step": %d}' % step)


@pytest.fixture
def repo(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / ".gitignore").write_text("data/**\n!data/**/\n")  # the project's rule for data/
    git(tmp_path, "add", ".gitignore")
    git(tmp_path, "commit", "-qm", "ignore data")
    return tmp_path


def park(repo, *folders):
    return subprocess.run(["sh", str(SCRIPT), *folders], cwd=repo, capture_output=True, text=True)


def test_the_newest_checkpoint_is_parked_and_the_one_it_replaces_is_unstaged(repo):
    unet = repo / "data" / "ckpt" / "unet"
    checkpoint(unet, 200)
    checkpoint(unet, 400)
    result = park(repo, "data/ckpt/unet")
    assert result.returncode == 0, result.stderr
    assert "parked data/ckpt/unet/step-000400" in result.stdout
    assert git(repo, "diff", "--cached", "--name-only").split() == [
        "data/ckpt/unet/step-000400/meta.json", "data/ckpt/unet/step-000400/model.safetensors"]
    git(repo, "commit", "-qm", "park 400")

    shutil.rmtree(unet / "step-000200")  # the resumed training goes on and prunes
    shutil.rmtree(unet / "step-000400")
    checkpoint(unet, 600)
    checkpoint(unet, 800)
    assert park(repo, "data/ckpt/unet").returncode == 0
    assert git(repo, "diff", "--cached", "--no-renames", "--name-status").splitlines() == [
        "D\tdata/ckpt/unet/step-000400/meta.json", "D\tdata/ckpt/unet/step-000400/model.safetensors",
        "A\tdata/ckpt/unet/step-000800/meta.json", "A\tdata/ckpt/unet/step-000800/model.safetensors"]


@pytest.mark.parametrize("make, message", [
    (lambda folder: folder.mkdir(parents=True), "holds no step-* checkpoint"),
    (lambda folder: checkpoint(folder, 200, whole=False), "has no meta.json"),
])
def test_a_folder_without_a_whole_checkpoint_is_named_and_nothing_is_staged(repo, make, message):
    make(repo / "data" / "ckpt" / "scorer")
    checkpoint(repo / "data" / "ckpt" / "vae", 600)  # a good folder named first is not staged either
    result = park(repo, "data/ckpt/vae", "data/ckpt/scorer")
    assert result.returncode == 2 and message in result.stderr and "data/ckpt/scorer" in result.stderr
    assert git(repo, "diff", "--cached", "--name-only") == ""
