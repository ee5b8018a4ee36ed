import pytest

from delta_diff.scoring import AttributeClassifier, ScoreResult, WorldScorer
from delta_diff.world import WorldSpec, make_world_images, parse_caption

from tests.conftest import PROJECT_ROOT

SPEC = WorldSpec()


def shipped_scorer() -> WorldScorer:
    classifier = AttributeClassifier.from_pretrained(PROJECT_ROOT / "data" / "06_models" / "world_scorer")
    return WorldScorer(classifier, lambda prompt: parse_caption(prompt, SPEC))


def test_shipped_scorer_reads_real_held_out_images():
    images, metadata = make_world_images(SPEC, "eval", 200, seed=77)
    result = shipped_scorer().score(images, list(metadata.text))
    assert result.available and len(result.per_image) == 200
    for attribute in ("shape", "colour", "size", "position", "background"):
        assert result.summary[f"{attribute}_accuracy"] >= 0.95, result.summary


def test_wrong_prompt_lowers_the_score():
    images, metadata = make_world_images(SPEC, "eval", 20, seed=78)
    right = shipped_scorer().score(images, list(metadata.text)).summary["score"]
    shuffled = list(metadata.text[1:]) + [metadata.text[0]]
    wrong = shipped_scorer().score(images, shuffled).summary["score"]
    assert right > wrong + 0.2


def test_only_attributes_named_in_the_prompt_count():
    classifier = AttributeClassifier(vocabulary={a: SPEC.values(a) for a in ("shape", "colour")}, image_size=32)
    images, _ = make_world_images(SPEC, "train", 2, seed=0)
    result = WorldScorer(classifier, lambda p: parse_caption(p, SPEC)).score(images, ["a red thing", "a circle"])
    assert result.per_image["colour_ok"].isna().tolist() == [False, True]
    assert result.per_image["shape_ok"].isna().tolist() == [True, False]


def test_mismatched_batch_is_rejected():
    classifier = AttributeClassifier(vocabulary={"shape": SPEC.values("shape")}, image_size=32)
    images, _ = make_world_images(SPEC, "train", 2, seed=0)
    with pytest.raises(ValueError, match="2 images for 1 prompts"):
        WorldScorer(classifier, lambda p: parse_caption(p, SPEC)).score(images, ["a circle"])


def test_unavailable_result_carries_its_reason():
    result = ScoreResult.unavailable("hps_v2", "checkpoint HPS_v2_compressed.pt not found")
    assert not result.available and "not found" in result.reason and result.summary == {}
