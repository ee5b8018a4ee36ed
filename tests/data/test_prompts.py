import json
import logging

import pytest
import transformers

from delta_diff.data import (
    HPS_STYLES,
    PromptSetError,
    read_hps_benchmark_prompts,
    truncate_to_tokenizer,
    validate_prompts,
)


@pytest.fixture(scope="module")
def tokenizer():
    corpus = ["a red circle on a blue background"] * 50
    return transformers.CLIPTokenizer(model_max_length=8).train_new_from_iterator(corpus, vocab_size=400)


def test_validate_strips():
    assert validate_prompts([" a cat ", "a dog"], "pets") == ["a cat", "a dog"]


def test_validate_names_set_and_indices():
    with pytest.raises(PromptSetError) as error:
        validate_prompts(["ok", "  ", 3], "eval")
    message = str(error.value)
    assert "'eval'" in message and "index 1: empty prompt" in message
    assert "index 2: expected a string, got int" in message


def test_validate_rejects_a_bare_string():
    with pytest.raises(PromptSetError, match="must be a list"):
        validate_prompts("a cat", "pets")


def test_long_prompt_is_truncated_with_one_warning(tokenizer, caplog):
    short = ["a red circle", "a blue circle on a red"]  # the second is exactly 8 tokens: kept
    long = "a red circle on a blue background a red circle on a blue background"
    with caplog.at_level(logging.WARNING, logger="delta_diff.data.prompts"):
        prompts, truncated = truncate_to_tokenizer([short[0], long, short[1]], tokenizer, "eval")
    assert truncated == [1]
    assert prompts[0] == short[0] and prompts[2] == short[1]
    assert prompts[1] == "a red circle on a blue"  # 8 tokens = start + 6 words + end
    assert len(tokenizer(prompts[1])["input_ids"]) <= 8
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'eval'" in warnings[0].getMessage() and "[1]" in warnings[0].getMessage()


def test_short_prompts_are_untouched(tokenizer, caplog):
    with caplog.at_level(logging.WARNING):
        assert truncate_to_tokenizer(["a red circle"], tokenizer, "eval") == (["a red circle"], [])
    assert not caplog.records


def test_truncate_needs_a_tokenizer():
    with pytest.raises(TypeError, match="model_max_length"):
        truncate_to_tokenizer(["a"], object(), "eval")


def write_hps(folder, styles=HPS_STYLES, content=None):
    folder.mkdir(exist_ok=True)
    for style in styles:
        (folder / f"{style}.json").write_text(json.dumps(content or [f"{style} prompt 1", f" {style} prompt 2 "]))


def test_hps_absent_folder(tmp_path):
    result = read_hps_benchmark_prompts(tmp_path / "hps")
    assert result["available"] is False and result["styles"] == {}
    assert "does not exist" in result["reason"] and "anime.json" in result["reason"]
    assert read_hps_benchmark_prompts(None)["available"] is False


def test_hps_missing_files(tmp_path):
    write_hps(tmp_path / "hps", styles=("anime", "photo"))
    result = read_hps_benchmark_prompts(tmp_path / "hps")
    assert result["available"] is False
    assert "lacks concept-art.json, paintings.json" in result["reason"]


def test_hps_present(tmp_path):
    write_hps(tmp_path / "hps")
    result = read_hps_benchmark_prompts(tmp_path / "hps")
    assert result["available"] is True and result["reason"] is None
    assert list(result["styles"]) == list(HPS_STYLES)
    assert result["styles"]["photo"] == ["photo prompt 1", "photo prompt 2"]


@pytest.mark.parametrize(
    "text, match",
    [
        ('["ok", ""]', r"paintings.json.*index 1: empty prompt"),
        ('["ok", 7]', r"paintings.json.*index 1: expected a string"),
        ('{"a": 1}', r"paintings.json holds a JSON dict"),
        ("[]", r"paintings.json is an empty list"),
        ("[not json", r"paintings.json is not valid UTF-8 JSON"),
    ],
)
def test_hps_malformed_file(tmp_path, text, match):
    write_hps(tmp_path / "hps")
    (tmp_path / "hps" / "paintings.json").write_text(text)
    with pytest.raises(PromptSetError, match=match):
        read_hps_benchmark_prompts(tmp_path / "hps")
