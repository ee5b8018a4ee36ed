"""The on-disk training cache: sharded, fp16, keyed by its inputs, resumable shard by shard, read row by row."""

import json
import os

import pytest
import torch
from diffusers import StableDiffusionPipeline

from delta_diff.data import read_image_folder, write_image_folder
from delta_diff.data import sharded_cache
from delta_diff.data.cache_spec import cache_inputs
from delta_diff.data.latent_cache import encode_latents, encode_prompts, pil_batch_to_pixels, plan_training_cache
from delta_diff.data.sharded_cache import (
    TrainingCacheError,
    current_cache_folder,
    open_training_cache,
    shard_name,
    write_training_cache,
)
from delta_diff.world import WorldSpec, make_world_images

from tests.conftest import PROJECT_ROOT

TEACHER = PROJECT_ROOT / "data" / "06_models" / "embedded_teacher"
N, SHARD = 40, 16  # three shards: 16 + 16 + 8


@pytest.fixture(scope="module")
def teacher():
    return StableDiffusionPipeline.from_pretrained(TEACHER, use_safetensors=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    images, metadata = make_world_images(WorldSpec(), "train", N, seed=3)
    write_image_folder(root, images, metadata)
    return read_image_folder(root)


def counted_plan(folder, teacher, text="token_ids", resolution=32):
    plan = plan_training_cache(folder, teacher, resolution, text, SHARD, batch_size=8,
                               inputs=cache_inputs(folder, teacher, resolution), show_progress=False)
    calls = []
    encode = plan.encode_rows

    def counting(start, stop):
        calls.append((start, stop))
        return encode(start, stop)

    plan.encode_rows = counting
    return plan, calls


def test_rows_hold_the_fp32_encodings_to_fp16_precision(tmp_path, folder, teacher):
    plan, _ = counted_plan(folder, teacher, text="embeddings")
    cache = open_training_cache(write_training_cache(tmp_path, plan))
    assert len(cache) == N and cache.spec["n_shards"] == 3 and cache.text_mode == "embeddings"
    index = torch.tensor([0, 17, 39, 5])  # across all three shards, out of order
    rows = cache.rows(index)
    pixels = pil_batch_to_pixels([folder.load_image(int(i)) for i in index], 32)
    mean, std = encode_latents(teacher.vae, pixels)
    assert rows["latent_mean"].dtype == torch.float32
    # fp16 keeps 11 significant bits: the rounding is far below the posterior's own std (what every draw adds)
    error = (rows["latent_mean"] - mean).abs()
    assert error.max() <= mean.abs().max() * 2 ** -10 and error.mean() < std.mean() / 10
    torch.testing.assert_close(rows["latent_std"], std, rtol=2 ** -10, atol=1e-6)
    captions = [folder.captions[int(i)] for i in index]
    ids = teacher.tokenizer(captions, padding="max_length", truncation=True,
                            max_length=teacher.tokenizer.model_max_length, return_tensors="pt").input_ids
    assert torch.equal(rows["input_ids"], ids)
    torch.testing.assert_close(rows["text_embeddings"], encode_prompts(teacher.tokenizer, teacher.text_encoder, captions),
                               rtol=2 ** -10, atol=2 ** -12)


def test_token_id_caches_are_encoded_by_the_text_encoder_on_read(tmp_path, folder, teacher):
    plan, _ = counted_plan(folder, teacher)
    cache = open_training_cache(write_training_cache(tmp_path, plan))
    rows = cache.rows([3, 20])
    assert "text_embeddings" not in rows and cache.spec["bytes_per_row"] == 2 * 4 * 8 * 8 * 2 + 16 * 4
    expected = encode_prompts(teacher.tokenizer, teacher.text_encoder, [folder.captions[3], folder.captions[20]])
    torch.testing.assert_close(cache.text_embeddings(rows, teacher.text_encoder), expected)
    with pytest.raises(TrainingCacheError, match="stores token ids, not text embeddings"):
        cache.text_embeddings(rows)


def test_an_unchanged_build_writes_nothing_and_other_inputs_get_their_own_folder(tmp_path, folder, teacher, caplog):
    plan, calls = counted_plan(folder, teacher)
    first = write_training_cache(tmp_path, plan)
    stamps = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}
    again, calls_again = counted_plan(folder, teacher)
    with caplog.at_level("INFO"):
        assert write_training_cache(tmp_path, again) == first
    assert calls_again == [] and {p.name: p.stat().st_mtime_ns for p in first.iterdir()} == stamps
    assert "re-used (nothing re-encoded)" in caplog.text
    other, _ = counted_plan(folder, teacher, resolution=16)
    second = write_training_cache(tmp_path, other)
    assert second != first and current_cache_folder(tmp_path) == second and (first / "complete.json").is_file()
    assert open_training_cache(second).rows([0])["latent_mean"].shape == (1, 4, 4, 4)


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_damaged_shard_is_named_and_only_it_is_rebuilt(tmp_path, folder, teacher, damage):
    plan, _ = counted_plan(folder, teacher)
    built = write_training_cache(tmp_path, plan)
    victim = built / shard_name(1)
    if damage == "missing":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(TrainingCacheError, match=f"{shard_name(1)}.*rebuild it with `kedro run --pipelines data_prep`"):
        open_training_cache(built)
    untouched = {n: (built / n).stat().st_mtime_ns for n in (shard_name(0), shard_name(2))}
    again, calls = counted_plan(folder, teacher)
    write_training_cache(tmp_path, again)
    assert calls == [(16, 32)]
    assert {n: (built / n).stat().st_mtime_ns for n in untouched} == untouched
    assert len(open_training_cache(built).rows(list(range(N)))["latent_mean"]) == N


def test_an_interrupted_build_resumes_at_its_first_missing_shard(tmp_path, folder, teacher):
    plan, calls = counted_plan(folder, teacher)
    encode = plan.encode_rows

    def dies_in_the_last_shard(start, stop):
        if start == 32:
            raise KeyboardInterrupt
        return encode(start, stop)

    plan.encode_rows = dies_in_the_last_shard
    with pytest.raises(KeyboardInterrupt):
        write_training_cache(tmp_path, plan)
    folder_built = tmp_path / plan.key
    assert not (folder_built / "complete.json").exists() and current_cache_folder(tmp_path) is None
    assert not list(folder_built.glob(".*partial*"))
    with pytest.raises(TrainingCacheError, match="incomplete"):
        open_training_cache(folder_built)
    again, calls = counted_plan(folder, teacher)
    write_training_cache(tmp_path, again)
    assert calls == [(32, 40)]


def test_not_enough_disk_is_refused_before_encoding_with_the_estimate(tmp_path, folder, teacher, monkeypatch):
    plan, calls = counted_plan(folder, teacher)
    monkeypatch.setattr(sharded_cache.shutil, "disk_usage", lambda path: type("U", (), {"free": 1000})())
    with pytest.raises(TrainingCacheError, match=r"needs ~43.5 KB .*\(40 rows x 1,088 bytes\) but only 1.0 KB is free"):
        write_training_cache(tmp_path, plan)
    assert calls == [] and not (tmp_path / plan.key).exists()


def test_reads_touch_only_the_rows_asked_for(tmp_path, folder, teacher, monkeypatch):
    cache = open_training_cache(write_training_cache(tmp_path, counted_plan(folder, teacher)[0]))
    read = []
    real = os.pread

    def counting(fd, n, offset):
        read.append(n)
        return real(fd, n, offset)

    monkeypatch.setattr(sharded_cache.os, "pread", counting)
    cache.rows([1, 30])
    assert sum(read) == 2 * cache.spec["bytes_per_row"]


def test_the_spec_records_the_inputs(tmp_path, folder, teacher):
    plan, _ = counted_plan(folder, teacher)
    spec = json.loads((write_training_cache(tmp_path, plan) / "spec.json").read_text())
    assert spec["inputs"]["n_images"] == N and spec["inputs"]["resolution"] == 32
    assert set(spec["inputs"]) >= {"folder_digest", "vae_digest", "text_encoder_digest", "tokenizer_digest"}
