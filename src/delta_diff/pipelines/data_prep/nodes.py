"""Thin nodes of ``data_prep``: training images, prompt sets, and the latent/text cache."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from delta_diff.config_types import Count
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
    n_images: Count = 4000
    seed: int = 1
    check_images: bool = True


class PromptSetsParams(BaseModel):
    """Three prompt sets that never share a prompt: ``train`` (captions of the training images, for probes),
    ``search`` (what the architecture search selects on: Theta, surrogate targets, stage validation) and
    ``eval`` (evaluate's alone). From the world, search and eval prompts come from disjoint held-out
    combinations (``world.search_fraction``); with ``eval_prompts_file`` the search needs its own file."""

    model_config = ConfigDict(extra="forbid")
    n_train_prompts: int = 256
    n_eval_prompts: int = 96
    eval_seed: int = 1000
    eval_prompts_file: str | None = None  # a JSON list of prompts; None: the world's held-out eval combinations
    n_search_prompts: int = 32
    search_seed: int = 2000
    search_prompts_file: str | None = None  # a JSON list of prompts; None: the world's held-out search combinations
    hps_benchmark_folder: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PromptSetsParams:
        for key in ("n_train_prompts", "n_eval_prompts", "n_search_prompts"):
            if getattr(self, key) < 1:
                raise ValueError(f"data_prep.prompt_sets.{key} is {getattr(self, key)}; it must be >= 1")
        if self.eval_prompts_file and not self.search_prompts_file:
            raise ValueError(
                "data_prep.prompt_sets.search_prompts_file is not set but eval_prompts_file is: the search must "
                "select on prompts of its own, never on evaluate's; give a JSON list of other prompts (e.g. a "
                "held-back slice of the training captions)")
        eval_seeds = range(self.eval_seed, self.eval_seed + self.n_eval_prompts)
        search_seeds = range(self.search_seed, self.search_seed + self.n_search_prompts)
        if eval_seeds.start < search_seeds.stop and search_seeds.start < eval_seeds.stop:
            raise ValueError(
                f"data_prep.prompt_sets.search_seed: the search's seeds {search_seeds.start}..{search_seeds.stop - 1}"
                f" overlap evaluate's {eval_seeds.start}..{eval_seeds.stop - 1} (eval_seed); move search_seed to "
                f"{eval_seeds.stop} or beyond")
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


def _prompts_from_file(path: str, n: int, seed: int, key: str) -> list[dict[str, Any]]:
    try:
        listed = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"data_prep.prompt_sets.{key} {path}: {error}; give a JSON list of prompt strings") from None
    if not isinstance(listed, list):
        raise ValueError(f"data_prep.prompt_sets.{key} {path} holds a JSON {type(listed).__name__}; give a list "
                         "of strings")
    texts = validate_prompts(listed[:n], f"{key} ({path})")
    return [{"text": t, "seed": seed + i} for i, t in enumerate(texts)]


def check_disjoint_prompts(search: list[dict[str, Any]], evaluation: list[dict[str, Any]]) -> None:
    """Refuse a search prompt that evaluate also judges (compared after whitespace/case normalisation)."""
    normalise = lambda text: " ".join(text.lower().split())  # noqa: E731
    shared = sorted({normalise(e["text"]) for e in search} & {normalise(e["text"]) for e in evaluation})
    if shared:
        raise ValueError(
            f"data_prep.prompt_sets: {len(shared)} prompt(s) are in both the search's and evaluate's sets, e.g. "
            f"{shared[0]!r}; the search would select on the test set. Remove them from search_prompts_file or "
            "eval_prompts_file")


def build_prompt_sets(training_images: ImageFolder, teacher, world: WorldSpec, params: PromptSetsParams) -> dict[str, Any]:
    """Train prompts (captions of the training set), the search's and evaluate's prompts with their seeds (the
    world's disjoint held-out combinations, or files), and the HPS v2 benchmark prompts when present; over-long
    prompts are truncated as the teacher's tokenizer will, with a warning."""
    step = max(1, len(training_images) // params.n_train_prompts)
    train = validate_prompts(training_images.captions[::step][: params.n_train_prompts], "train prompts")
    if params.eval_prompts_file:
        evaluation = _prompts_from_file(params.eval_prompts_file, params.n_eval_prompts, params.eval_seed,
                                        "eval_prompts_file")
    else:
        evaluation = make_prompt_set(world, "eval", params.n_eval_prompts, params.eval_seed).to_dict(orient="records")
    if params.search_prompts_file:
        search = _prompts_from_file(params.search_prompts_file, params.n_search_prompts, params.search_seed,
                                    "search_prompts_file")
    else:
        search = make_prompt_set(world, "search", params.n_search_prompts,
                                 params.search_seed).to_dict(orient="records")
    tokenizer = teacher.tokenizer
    train, train_cut = truncate_to_tokenizer(train, tokenizer, "train prompts")
    truncated = {"train": train_cut}
    for name, entries in (("search", search), ("eval", evaluation)):
        texts, truncated[name] = truncate_to_tokenizer([e["text"] for e in entries], tokenizer, f"{name} prompts")
        for entry, text in zip(entries, texts):
            entry["text"] = text
    check_disjoint_prompts(search, evaluation)
    hps = read_hps_benchmark_prompts(params.hps_benchmark_folder)
    if not hps["available"]:
        logger.warning("HPS v2 benchmark prompts absent: %s", hps["reason"])
    return {"train": train, "search": search, "eval": evaluation, "hps_benchmark": hps, "truncated": truncated}


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
        "prompts": {"train": len(prompt_sets["train"]), "search": len(prompt_sets["search"]),
                    "eval": len(prompt_sets["eval"]),
                    "truncated": {k: len(v) for k, v in prompt_sets["truncated"].items()}},
        "hps_benchmark": {"available": hps["available"], "reason": hps["reason"],
                          "prompts": {k: len(v) for k, v in hps["styles"].items()}},
        "cache": {"folder": str(cache.folder), "key": cache.key, "rows": len(cache), "text": cache.text_mode,
                  "shards": cache.spec["n_shards"], "bytes_per_row": cache.spec["bytes_per_row"],
                  "entries": cache.spec["entries"]},
    }
