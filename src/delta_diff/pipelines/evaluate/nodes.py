"""Thin nodes of ``evaluate``: every model of the path and the baseline, measured the same way."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from delta_diff.config_types import Count, PositiveFloat, Timestep
from delta_diff.data.memory_cache import as_training_cache
from delta_diff.evaluation.protocol import Protocol, results_markdown
from delta_diff.evaluation.protocol import evaluate_models as evaluate_models_protocol
from delta_diff.reporting.results_figures import attention_figure, comparison_grid, path_plot
from delta_diff.scoring import AttributeClassifier, ScoreResult, WorldScorer
from delta_diff.scoring.hps_v2 import checkpoint_problem
from delta_diff.sd import DevicePolicy, training_noise_scheduler
from delta_diff.similarity import probe_from_cache
from delta_diff.tracking import log_metrics
from delta_diff.world import WorldSpec, parse_caption

logger = logging.getLogger(__name__)


class EvaluateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_prompts: Count = 48
    steps: Count = 25
    guidance_scale: PositiveFloat = 4.0
    resolution: int | None = Field(None, ge=8)  # image size in px; None: the teacher U-Net's native size
    latency_repeats: Count = 20
    probe_prompts: Count = 16
    probe_timesteps: list[Timestep] = Field([200, 500, 800], min_length=1)
    grid_prompts: Count = 8
    world_score: bool = True  # the embedded world's scorer (it parses world captions); false for real SD runs
    hps_checkpoint: str | None = None  # local HPS_v2_compressed.pt (the whole fine-tuned CLIP); None: unavailable
    hps_model_name: str = "ViT-H-14"
    hps_prompts_per_style: Count = 8

    @field_validator("hps_checkpoint")
    @classmethod
    def _checkpoint_exists(cls, value: str | None) -> str | None:
        problem = checkpoint_problem(value, "evaluate.hps_checkpoint") if value is not None else None
        if problem:  # fail when the run starts, not after the training
            raise ValueError(f"{problem}, or set it to null")
        return value


def hps_v2_setup(params: EvaluateParams, prompt_sets, runtime: DevicePolicy) -> tuple[Any, ScoreResult | None]:
    """(scorer, None) when HPS v2 can be computed here, else (None, an unavailable result with the reason)."""
    if params.hps_checkpoint is None:
        return None, ScoreResult.unavailable(
            "hps_v2", "no local HPS v2 checkpoint configured (evaluate.hps_checkpoint); it cannot be downloaded here")
    benchmark = prompt_sets.get("hps_benchmark", {})
    if not benchmark.get("available"):
        return None, ScoreResult.unavailable("hps_v2", f"HPS v2 benchmark prompts absent: {benchmark.get('reason')}")
    from delta_diff.scoring.hps_v2 import load_hps_scorer

    return load_hps_scorer(params.hps_checkpoint, model_name=params.hps_model_name, policy=runtime), None


def curve_pipelines(teacher, curve_unets: dict[str, Any]) -> dict[str, Any]:
    """``{"baseline_at_150": pipeline, ...}``: each of the baseline's kept students (``{"step_000150": loader}``) in the
    teacher's pipeline, ordered by step."""
    steps = {int(name.split("_")[-1]): load for name, load in curve_unets.items()}
    return {f"baseline_at_{step}": type(teacher)(**{**teacher.components, "unet": steps[step]()})
            for step in sorted(steps)}


def evaluate_models(models: dict[str, Any], roles: dict[str, str], prompt_sets, training_cache,
                    classifier: AttributeClassifier, world: WorldSpec, params: EvaluateParams, runtime: DevicePolicy):
    """Results table (one row per model, the paper's shape) and figures; ``models`` maps names to pipelines
    with the teacher first (each freshly loaded for this node, so placing them here touches nobody else's)."""
    for pipeline in models.values():
        runtime.place_frozen(pipeline)
    teacher = next(iter(models.values()))
    tokenizer = teacher.tokenizer
    probe = probe_from_cache(training_cache, [tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id],
                             params.probe_prompts, params.probe_timesteps, training_noise_scheduler(teacher), seed=0,
                             text_encoder=teacher.text_encoder)
    world_scorer = (WorldScorer(runtime.place_frozen(classifier), lambda prompt: parse_caption(prompt, world))
                    if params.world_score else None)
    hps_scorer, hps = hps_v2_setup(params, prompt_sets, runtime)
    protocol = Protocol(params.steps, params.guidance_scale, params.latency_repeats, params.grid_prompts,
                        params.hps_prompts_per_style, params.resolution)
    prompts = prompt_sets["eval"][: params.n_prompts]
    result = evaluate_models_protocol(models, roles, prompts, probe, protocol, world_scorer, hps_scorer,
                                      prompt_sets.get("hps_benchmark", {}).get("styles"))
    table = result.table
    # The optimizer steps behind each point of the baseline's curve (its final model is the "baseline" row).
    table.insert(2, "curve_step", [int(n.rsplit("_", 1)[1]) if roles[n] == "baseline_curve" else None
                                   for n in table["model"]])
    if hps_scorer is not None:  # the HPS version in every HPS column's name (hps_v2.0_photo, ..., hps_v2.0)
        table = table.rename(columns={c: c.replace("hps_v2", f"hps_{hps_scorer.version}")
                                      for c in table.columns if c.startswith("hps_v2")})
    hps_columns = [c for c in table.columns if c.startswith("hps_v") and hps_scorer is not None]
    log_metrics({f"evaluate.{r['model']}.{k}": r[k] for r in table.to_dict(orient="records")
                 for k in ("world_score", "attention_alignment_with_teacher", "latency_ms", *hps_columns)})
    grid_rows = {n: result.samples[n] for n in models if roles[n] in ("teacher", "student", "baseline")}
    texts = [p["text"] for p in prompts]
    grid = comparison_grid(grid_rows, texts[: params.grid_prompts])
    first_words = probe.word_tokens[0].nonzero().flatten().tolist()
    first_ids = as_training_cache(training_cache).rows([0], ["input_ids"])["input_ids"][0]  # the probe's first caption
    token_names = [tokenizer.convert_ids_to_tokens(int(first_ids[i])).replace("</w>", "") for i in first_words]
    attention = attention_figure({n: result.maps[n][first_words] for n in grid_rows}, token_names)
    notes = {"hps_v2": {"available": hps_scorer is not None, "reason": hps.reason if hps else None,
                        "version": hps_scorer.version if hps_scorer else None,
                        "prompts_per_style": params.hps_prompts_per_style if hps_scorer else None},
             "prompts": len(texts), "steps": params.steps, "guidance_scale": params.guidance_scale,
             "sampler": type(teacher.scheduler).__name__, "device": str(runtime.torch_device),
             "resolution": params.resolution or teacher.unet.config.sample_size * teacher.vae_scale_factor,
             "text_tokens": tokenizer.model_max_length,
             "frozen_dtype": runtime.frozen_dtype}
    metric = "world_score" if params.world_score else next((c for c in table.columns if c.startswith("hps_v")
                                                             and c.count("_") == 1), "hps_v2")
    return table, results_markdown(table, notes), grid, attention, path_plot(table, metric), notes
