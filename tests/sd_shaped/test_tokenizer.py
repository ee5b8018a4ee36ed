"""The CLIP tokenizer converted from open_clip's BPE file, checked against known SD v1.4 ids and against hpsv2's
bundled open_clip ``SimpleTokenizer``, an independent implementation of the same BPE."""

import pytest

pytest.importorskip("hpsv2")

from hpsv2.src.open_clip.tokenizer import SimpleTokenizer, basic_clean, tokenize  # noqa: E402

from delta_diff.sd_shaped.tokenizer import (  # noqa: E402
    N_MERGES,
    VOCAB_SIZE,
    byte_characters,
    clip_tokenizer,
    clip_vocab,
    read_merges,
    write_vocab_files,
)

# Punctuation, numbers, capitals, contractions, whitespace runs, accents, non-Latin scripts, emoji, an empty
# prompt and prompts far past 77 tokens. None holds "!" (see the v2 quirk below) or text that ftfy rewrites.
PROMPTS = [
    "a photo of a cat",
    "A PHOTO OF A CAT",
    "hello, world. it's 3:45pm?",
    "1234567890 and 3.14159",
    "café crème brûlée",
    "naïve résumé, Ünïcödé ÀÉÎÕÜ straße",
    "東京タワーの夜景",
    "🐱 cat emoji 🚀 rocket",
    "don't won't they're I'm we'll he'd she's",
    "  multiple   spaces\tand\nnewlines ",
    "",
    "???...;;; ---",
    "self-driving car, state-of-the-art",
    "e=mc^2 (physics) [brackets] {braces}",
    "1st 2nd 3rd 4th 1990s",
    "#hashtag @mention $100 50% a+b=c",
    "Привет мир",
    "مرحبا بالعالم",
    "ελληνικά γράμματα",
    "a_b_c snake_case CamelCase",
    "trending on artstation, 4k, 8k, octane render, highly detailed",
    "a\u00a0non-breaking space",
    "e\u0301 combining accent",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "x" * 300,
    "an astronaut riding a horse on the moon, " * 12,
]


@pytest.fixture(scope="module")
def v1_tokenizer():
    return clip_tokenizer("sd-v1-4")


@pytest.fixture(scope="module")
def v2_tokenizer():
    return clip_tokenizer("sd-v2-1-base")


@pytest.fixture(scope="module")
def open_clip_tokenizer():
    return SimpleTokenizer()


def test_vocabulary_has_clips_sizes_and_special_ids():
    merges = read_merges()
    vocab = clip_vocab(merges)
    assert len(merges) == N_MERGES == 48_894
    assert len(vocab) == VOCAB_SIZE == 49_408
    assert vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407
    characters = byte_characters()
    assert len(set(characters)) == 256 and vocab["!"] == 0 and vocab["!</w>"] == 256
    assert vocab["".join(merges[0].split())] == 512  # merges follow the 512 byte tokens, in file order


def test_vocab_files_are_written_as_hugging_face_ships_them(tmp_path):
    vocab_file, merges_file = write_vocab_files(tmp_path)
    lines = merges_file.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#version: 0.2" and len(lines) == 1 + N_MERGES
    assert vocab_file.name == "vocab.json" and vocab_file.stat().st_size > 0


def test_known_sd_v1_4_ids(v1_tokenizer):
    assert v1_tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert len(v1_tokenizer) == VOCAB_SIZE and v1_tokenizer.model_max_length == 77


@pytest.mark.parametrize("prompt", PROMPTS, ids=range(len(PROMPTS)))
def test_same_tokens_as_open_clip(prompt, v1_tokenizer, open_clip_tokenizer):
    expected = open_clip_tokenizer.encode(prompt)
    assert v1_tokenizer(prompt, add_special_tokens=False).input_ids == expected


@pytest.mark.parametrize("prompt", PROMPTS, ids=range(len(PROMPTS)))
def test_padded_and_truncated_to_77_as_open_clip(prompt, v1_tokenizer, v2_tokenizer):
    """open_clip's ``tokenize`` keeps the start token, cuts at 77 with the end token last and pads with 0 --
    exactly SD 2.x's padding ("!" is id 0); SD v1 pads with <|endoftext|> instead."""
    expected = tokenize(prompt)[0].tolist()
    kwargs = dict(padding="max_length", max_length=77, truncation=True)
    assert v2_tokenizer(prompt, **kwargs).input_ids == expected
    v1_ids = v1_tokenizer(prompt, **kwargs).input_ids
    n_real = expected.index(49407) + 1
    assert v1_ids[:n_real] == expected[:n_real] and v1_ids[n_real:] == [49407] * (77 - n_real)


@pytest.mark.parametrize("prompt", ["“curly quotes” and ‘single’", "a&b &amp; &lt;tag&gt;", "ﬁne ligature",
                                    "ｆｕｌｌｗｉｄｔｈ"])
def test_only_open_clips_text_cleaning_differs(prompt, v1_tokenizer, open_clip_tokenizer):
    """open_clip first runs ftfy and html.unescape; SD's CLIPTokenizer (and so this one) only NFC-normalises,
    so such prompts tokenize differently, and the same once cleaned the open_clip way."""
    ours = v1_tokenizer(prompt, add_special_tokens=False).input_ids
    assert ours != open_clip_tokenizer.encode(prompt)
    assert v1_tokenizer(basic_clean(prompt), add_special_tokens=False).input_ids == open_clip_tokenizer.encode(prompt)


def test_sd_2_pad_token_splits_exclamation_marks(v1_tokenizer, v2_tokenizer):
    """Stock SD 2.x tokenizers make their pad token "!" special, so every "!" in a prompt becomes id 0 where
    open_clip would merge it (diffusers issue #4153); kept, since this mirrors the real SD 2.x folder."""
    assert v1_tokenizer("hi! there").input_ids == [49406, 1883, 256, 997, 49407]
    assert v2_tokenizer("hi! there").input_ids == [49406, 1883, 0, 997, 49407]
    assert v2_tokenizer.pad_token == "!" and v2_tokenizer.pad_token_id == 0
    assert v1_tokenizer.pad_token_id == 49407
