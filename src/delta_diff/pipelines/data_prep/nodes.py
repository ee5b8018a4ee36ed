"""Thin nodes of ``data_prep``: training images, prompt sets, and the latent/text cache."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from delta_diff.data import (
    ImageFolder,
    read_hps_benchmark_prompts,
    read_image_folder,
    truncate_to_tokenizer,
    validate_prompts,
    write_image_folder,
)
from delta_diff.data.cache_spec import cache_inputs
from delta_diff.data.latent_cache import plan_training_cache
from delta_diff.data.sharded_cache import CachePlan, TrainingCache
from delta_diff.sd import DevicePolicy
from delta_diff.world import WorldSpec, make_prompt_set, make_world_images

logger = logging.getLogger(__name__)


class TrainingImagesParams(BaseModel):
    """``source: world`` generates the embedded world's images into ``folder`` (once; reused while the world
    and seed are unchanged); ``source: folder`` reads an existing image folder there (e.g. a LAION subset)."""

    model_config = ConfigDict(extra="forbid")
    source: Literal["world", "folder"] = "world"
    folder: str
    n_images: int = 4000
    seed: int = 1
    check_images: bool = True


class PromptSetsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_train_prompts: int = 256
    n_eval_prompts: int = 96
    eval_seed: int = 1000
    eval_prompts_file: str | None = None  # a JSON list of prompts; None: the world's held-out prompts
    hps_benchmark_folder: str | None = None

    @model_validator(mode="after")
    def _positive(self) -> PromptSetsParams:
        if self.n_train_prompts < 1 or self.n_eval_prompts < 1:
            raise ValueError("n_train_prompts and n_eval_prompts must be >= 1")
        return self


class CacheParams(BaseModel):
    """``text``: cache the captions' token ids and run the frozen text encoder per training step (the default:
    it costs < 1 % of an SD distillation step, and 77 x 768 fp16 embeddings are 118 KB per caption), or cache the
    embeddings themselves. ``shard_size``: rows per shard file (the RAM a build needs is one shard's)."""

    model_config = ConfigDict(extra="forbid")
    resolution: int = Field(32, ge=8)
    batch_size: int = Field(256, ge=1)
    text: Literal["token_ids", "embeddings"] = "token_ids"
    shard_size: int = Field(4096, ge=1)


def collect_training_images(world: WorldSpec, params: TrainingImagesParams) -> ImageFolder:
    """The image-caption training set, validated (a bad folder fails here, naming the file and row)."""
    folder = Path(params.folder)
    if params.source == "world":
        stamp = folder / "world.json"
        wanted = {"world": world.model_dump(mode="json"), "n_images": params.n_images, "seed": params.seed}
        if not (stamp.is_file() and json.loads(stamp.read_text()) == wanted):
            images, metadata = make_world_images(world, "train", params.n_images, params.seed)
            write_image_folder(folder, images, metadata)
            stamp.write_text(json.dumps(wanted, indent=1))
            logger.info("generated %d world images into %s", params.n_images, folder)
    training_images = read_image_folder(folder, check_images=params.check_images)
    logger.info("training images: %d from %s", len(training_images), folder)
    return training_images


def build_prompt_sets(training_images: ImageFolder, teacher, world: WorldSpec, params: PromptSetsParams) -> dict[str, Any]:
    """Train prompts (captions of the training set), evaluation prompts with their seeds (the world's held-out
    combinations, or a file), and the HPS v2 benchmark prompts when present; over-long prompts are truncated
    as the teacher's tokenizer will, with a warning."""
    step = max(1, len(training_images) // params.n_train_prompts)
    train = validate_prompts(training_images.captions[::step][: params.n_train_prompts], "train prompts")
    if params.eval_prompts_file:
        path = Path(params.eval_prompts_file)
        try:
            listed = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"eval_prompts_file {path}: {error}; give a JSON list of prompt strings") from None
        if not isinstance(listed, list):
            raise ValueError(f"eval_prompts_file {path} holds a JSON {type(listed).__name__}; give a list of strings")
        eval_prompts = validate_prompts(listed[: params.n_eval_prompts], f"eval prompts ({path})")
        evaluation = [{"text": t, "seed": params.eval_seed + i} for i, t in enumerate(eval_prompts)]
    else:
        table = make_prompt_set(world, "eval", params.n_eval_prompts, params.eval_seed)
        evaluation = table.to_dict(orient="records")
    tokenizer = teacher.tokenizer
    train, train_cut = truncate_to_tokenizer(train, tokenizer, "train prompts")
    eval_texts, eval_cut = truncate_to_tokenizer([e["text"] for e in evaluation], tokenizer, "eval prompts")
    for entry, text in zip(evaluation, eval_texts):
        entry["text"] = text
    hps = read_hps_benchmark_prompts(params.hps_benchmark_folder)
    if not hps["available"]:
        logger.warning("HPS v2 benchmark prompts absent: %s", hps["reason"])
    return {
        "train": train,
        "eval": evaluation,
        "hps_benchmark": hps,
        "truncated": {"train": train_cut, "eval": eval_cut},
    }


def cache_latents_and_text(training_images: ImageFolder, teacher, params: CacheParams,
                           runtime: DevicePolicy) -> CachePlan:
    """The training cache of every pair, keyed by its inputs: the catalog's dataset encodes (on the run's device)
    only the shards not already on disk for these inputs, so an unchanged data_prep encodes nothing."""
    inputs = cache_inputs(training_images, teacher, params.resolution)  # digests of the weights as stored
    runtime.place_frozen(teacher)  # this node's own freshly loaded teacher
    return plan_training_cache(training_images, teacher, params.resolution, params.text, params.shard_size,
                               params.batch_size, inputs)


def summarise_data(training_images: ImageFolder, prompt_sets: dict[str, Any], cache: TrainingCache) -> dict[str, Any]:
    hps = prompt_sets["hps_benchmark"]
    return {
        "training_images": {"count": len(training_images), "folder": str(training_images.root)},
        "prompts": {"train": len(prompt_sets["train"]), "eval": len(prompt_sets["eval"]),
                    "truncated": {k: len(v) for k, v in prompt_sets["truncated"].items()}},
        "hps_benchmark": {"available": hps["available"], "reason": hps["reason"],
                          "prompts": {k: len(v) for k, v in hps["styles"].items()}},
        "cache": {"folder": str(cache.folder), "key": cache.key, "rows": len(cache), "text": cache.text_mode,
                  "shards": cache.spec["n_shards"], "bytes_per_row": cache.spec["bytes_per_row"],
                  "entries": cache.spec["entries"]},
    }
