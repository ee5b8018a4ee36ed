"""The HPS v2 scorer's wiring, on a tiny open_clip architecture with random weights saved as a local checkpoint
(the real ViT-H-14 checkpoint cannot be downloaded here, so what it would score is not tested)."""

import json

import pytest
import torch
from PIL import Image

pytest.importorskip("hpsv2")

from hpsv2.src.open_clip import add_model_config, create_model_and_transforms  # noqa: E402

from delta_diff.scoring.hps_v2 import HPSv2Scorer  # noqa: E402

TINY = {"embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hps")
    (folder / "tiny-hps-test.json").write_text(json.dumps(TINY))
    add_model_config(folder)
    torch.manual_seed(0)
    model, _, _ = create_model_and_transforms("tiny-hps-test", pretrained=None)
    path = folder / "HPS_tiny.pt"
    torch.save({"state_dict": model.state_dict()}, path)
    return path


def images():
    return [Image.new("RGB", (40, 40), colour) for colour in ("red", "blue", "white")]


def test_scores_one_number_per_image_and_is_repeatable(checkpoint):
    scorer = HPSv2Scorer(checkpoint, model_name="tiny-hps-test", batch_size=2)
    prompts = ["a red square", "a blue square", "a white square"]
    first = scorer.score(images(), prompts)
    assert first.available and first.metric == "hps_v2.0" and len(first.per_image) == 3
    assert all(-1.0 <= s <= 1.0 for s in first.per_image["score"])
    again = HPSv2Scorer(checkpoint, model_name="tiny-hps-test").score(images(), prompts)
    assert again.per_image["score"].tolist() == pytest.approx(first.per_image["score"].tolist(), abs=1e-5)
    assert first.per_image["score"].nunique() > 1


def test_missing_or_mismatched_checkpoints_are_named(checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match="evaluate.hps_checkpoint"):
        HPSv2Scorer(tmp_path / "absent.pt", model_name="tiny-hps-test")
    wrong = tmp_path / "wrong.pt"
    torch.save({"state_dict": {"visual.conv1.weight": torch.zeros(1)}}, wrong)
    with pytest.raises(ValueError, match="does not fit open_clip tiny-hps-test"):
        HPSv2Scorer(wrong, model_name="tiny-hps-test")


def test_a_run_loads_the_checkpoint_once(checkpoint):
    from delta_diff.scoring.hps_v2 import load_hps_scorer

    first = load_hps_scorer(checkpoint, model_name="tiny-hps-test")
    assert load_hps_scorer(checkpoint, model_name="tiny-hps-test") is first  # the search's stages and evaluate
    with pytest.raises(FileNotFoundError, match="theta.hps_checkpoint '/nowhere.pt' is not a file"):
        load_hps_scorer("/nowhere.pt", model_name="tiny-hps-test", key="theta.hps_checkpoint")
