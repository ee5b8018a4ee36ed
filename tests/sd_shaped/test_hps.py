"""A random HPS v2 checkpoint in the real checkpoint's format, read back through the project's scorer."""

import math

import pytest
from PIL import Image

pytest.importorskip("hpsv2")

from delta_diff.scoring.hps_v2 import HPSv2Scorer  # noqa: E402
from delta_diff.sd_shaped import DEFAULT_HPS_MODEL, SdShapedError, write_random_hps_checkpoint  # noqa: E402


def test_random_checkpoint_loads_in_the_scorer_and_scores(tmp_path):
    path = write_random_hps_checkpoint(tmp_path / "HPS_random.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["HPS_random.pt"]  # no staging file left
    scorer = HPSv2Scorer(path, model_name=DEFAULT_HPS_MODEL)
    result = scorer.score([Image.new("RGB", (64, 64), "red"), Image.new("RGB", (64, 64), "blue")],
                          ["a red square", "a blue square"])
    scores = result.per_image["score"].tolist()
    assert len(scores) == 2 and all(math.isfinite(s) and -1.0 <= s <= 1.0 for s in scores)


def test_default_model_is_a_small_bundled_architecture():
    from hpsv2.src.open_clip import list_models

    assert DEFAULT_HPS_MODEL in list_models()


def test_bad_targets_say_why(tmp_path):
    with pytest.raises(SdShapedError, match="is a folder"):
        write_random_hps_checkpoint(tmp_path)
    with pytest.raises(SdShapedError, match="no model config 'ViT-Q-99'"):
        write_random_hps_checkpoint(tmp_path / "h.pt", model_name="ViT-Q-99")
