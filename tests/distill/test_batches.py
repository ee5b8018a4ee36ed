"""Distillation batches from the on-disk cache: token ids encoded by the frozen text encoder per batch train the
same student as precomputed embeddings, in one process and on two ranks reading the cache themselves."""

import json

import pytest
import torch
from transformers import CLIPTextConfig, CLIPTextModel

from delta_diff.data.sharded_cache import CacheLayout, CachePlan, open_training_cache, write_training_cache
from delta_diff.distill import DistillConfig, distill_student
from delta_diff.distill.batches import CachedBatches
from delta_diff.distill.launch import distill_in_processes, write_job
from delta_diff.sd import DevicePolicy
from delta_diff.world.components import sd_v1_noise_scheduler

from tests.distill.test_checkpoints import fresh_pair

N, TOKENS, WIDTH = 24, 5, 16  # tiny_unet_config's cross-attention width


def tiny_text_encoder() -> CLIPTextModel:
    torch.manual_seed(3)
    config = CLIPTextConfig(hidden_size=WIDTH, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                            max_position_embeddings=TOKENS, vocab_size=40)
    return DevicePolicy(device="cpu").place_frozen(CLIPTextModel(config))


def token_id_cache(root) -> object:
    generator = torch.Generator().manual_seed(0)
    latent_mean = torch.randn(N, 4, 8, 8, generator=generator)
    input_ids = torch.randint(0, 40, (N, TOKENS), generator=generator)
    encoder = tiny_text_encoder()

    def encode_rows(start, stop):
        return {"latent_mean": latent_mean[start:stop], "latent_std": torch.full((stop - start, 4, 8, 8), 0.05),
                "input_ids": input_ids[start:stop]}

    def encode_extras():
        return {"empty_text_embedding": encoder(torch.zeros(1, TOKENS, dtype=torch.long))[0].detach()}

    plan = CachePlan(inputs={"test": 1}, layout=CacheLayout((4, 8, 8), TOKENS, WIDTH, "token_ids", shard_size=10),
                     n_rows=N, encode_rows=encode_rows, encode_extras=encode_extras, show_progress=False)
    return open_training_cache(write_training_cache(root, plan))


def test_token_ids_are_encoded_per_batch_by_the_text_encoder(tmp_path):
    cache, encoder = token_id_cache(tmp_path), tiny_text_encoder()
    with pytest.raises(ValueError, match="stores token ids.*pass text_encoder"):
        CachedBatches(cache, 4)
    batches = CachedBatches(cache, 4, encoder)
    index = torch.tensor([2, 11, 23])
    _, text = batches.batch(index, torch.Generator().manual_seed(0))
    torch.testing.assert_close(text, encoder(cache.rows(index)["input_ids"])[0])


def test_a_token_id_cache_trains_the_student_that_precomputed_embeddings_train(tmp_path):
    cache, encoder = token_id_cache(tmp_path), tiny_text_encoder()
    rows = cache.rows(torch.arange(N))
    with torch.no_grad():
        embedded = {"latent_mean": rows["latent_mean"], "latent_std": rows["latent_std"],
                    "text_embeddings": encoder(rows["input_ids"])[0],
                    "empty_text_embedding": cache.extras()["empty_text_embedding"]}
    config = DistillConfig(steps=3, batch_size=4, learning_rate=1e-3, log_every=1)
    policy = DevicePolicy(device="cpu")
    parent, student = fresh_pair()
    from_ids, _ = distill_student(parent, student, cache, sd_v1_noise_scheduler(), config, show_progress=False,
                                  policy=policy, text_encoder=encoder)
    from_embeddings, _ = distill_student(parent, student, embedded, sd_v1_noise_scheduler(), config,
                                         show_progress=False, policy=policy)
    for a, b in zip(from_ids.parameters(), from_embeddings.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_ranks_read_the_on_disk_cache_in_place(tmp_path):
    cache, encoder = token_id_cache(tmp_path / "cache"), tiny_text_encoder()
    parent, student = fresh_pair()
    (tmp_path / "job").mkdir()
    write_job(tmp_path / "job", parent, student, cache, sd_v1_noise_scheduler(), DistillConfig(), None, "distill",
              DevicePolicy(device="cpu"), encoder)
    job = json.loads((tmp_path / "job" / "job.json").read_text())
    assert job["cache_folder"] == str(cache.folder.resolve())  # not copied: LAION-size caches stay where they are
    assert not (tmp_path / "job" / "cache.safetensors").exists() and (tmp_path / "job" / "text_encoder").is_dir()


@pytest.mark.slow
def test_two_ranks_distil_from_a_token_id_cache(tmp_path):
    cache, encoder = token_id_cache(tmp_path / "cache"), tiny_text_encoder()
    parent, student = fresh_pair()
    config = DistillConfig(steps=2, batch_size=4, learning_rate=1e-3, log_every=1)
    trained, history = distill_in_processes(parent, student, cache, sd_v1_noise_scheduler(), config, 2,
                                            policy=DevicePolicy(device="cpu"), text_encoder=encoder)
    assert [h["step"] for h in history] == [1, 2] and all(torch.isfinite(torch.tensor(h["loss"])) for h in history)
