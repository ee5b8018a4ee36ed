"""Thin nodes of ``evaluate``: every model of the path and the baseline, measured the same way."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, field_validator

from delta_diff.architecture import count_params
from delta_diff.evaluation.cost import macs_per_forward, median_latency_ms
from delta_diff.evaluation.fidelity import psnr
from delta_diff.reporting.results_figures import attention_figure, comparison_grid, path_plot
from delta_diff.scoring import AttributeClassifier, ScoreResult, WorldScorer
from delta_diff.scoring.hps_v2 import checkpoint_problem
from delta_diff.similarity import attention_maps, map_similarity, probe_from_cache
from delta_diff.tracking import log_metrics
from delta_diff.world import WorldSpec, parse_caption
from delta_diff.world.components import sd_v1_noise_scheduler
from delta_diff.world.sampling import generate_images

logger = logging.getLogger(__name__)


class EvaluateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_prompts: int = 48
    steps: int = 25
    guidance_scale: float = 4.0
    latency_repeats: int = 20
    probe_prompts: int = 16
    probe_timesteps: list[int] = [200, 500, 800]
    grid_prompts: int = 8
    world_score: bool = True  # the embedded world's scorer (it parses world captions); false for real SD runs
    hps_checkpoint: str | None = None  # local HPS_v2_compressed.pt (the whole fine-tuned CLIP); None: unavailable
    hps_model_name: str = "ViT-H-14"
    hps_prompts_per_style: int = 8

    @field_validator("hps_checkpoint")
    @classmethod
    def _checkpoint_exists(cls, value: str | None) -> str | None:
        problem = checkpoint_problem(value, "evaluate.hps_checkpoint") if value is not None else None
        if problem:  # fail when the run starts, not after the training
            raise ValueError(f"{problem}, or set it to null")
        return value


def hps_v2_setup(params: EvaluateParams, prompt_sets) -> tuple[Any, ScoreResult | None]:
    """(scorer, None) when HPS v2 can be computed here, else (None, an unavailable result with the reason)."""
    if params.hps_checkpoint is None:
        return None, ScoreResult.unavailable(
            "hps_v2", "no local HPS v2 checkpoint configured (evaluate.hps_checkpoint); it cannot be downloaded here")
    benchmark = prompt_sets.get("hps_benchmark", {})
    if not benchmark.get("available"):
        return None, ScoreResult.unavailable("hps_v2", f"HPS v2 benchmark prompts absent: {benchmark.get('reason')}")
    from delta_diff.scoring.hps_v2 import HPSv2Scorer

    return HPSv2Scorer(params.hps_checkpoint, model_name=params.hps_model_name), None


def hps_v2_columns(scorer, pipeline, styles: dict[str, list[str]], params: EvaluateParams) -> dict[str, float]:
    """HPS v2 per benchmark style (first prompts of each, seeds 0..n-1) and their average, as table columns."""
    columns = {}
    for style, prompts in styles.items():
        prompts = prompts[: params.hps_prompts_per_style]
        images = generate_images(pipeline, prompts, list(range(len(prompts))), params.steps, params.guidance_scale,
                                 show_progress=False)
        columns[f"hps_v2_{style}"] = scorer.score(images, prompts).summary["score"]
    columns["hps_v2"] = sum(columns.values()) / len(columns)
    return columns


def evaluate_models(models: dict[str, Any], roles: dict[str, str], prompt_sets, training_cache,
                    classifier: AttributeClassifier, world: WorldSpec, params: EvaluateParams):
    """Results table (one row per model, the paper's shape) and figures; ``models`` maps names to pipelines
    with the teacher first."""
    prompts = prompt_sets["eval"][: params.n_prompts]
    texts, seeds = [p["text"] for p in prompts], [int(p["seed"]) for p in prompts]
    scorer = WorldScorer(classifier, lambda prompt: parse_caption(prompt, world))
    teacher = next(iter(models.values()))
    tokenizer = teacher.tokenizer
    probe = probe_from_cache(training_cache, [tokenizer.bos_token_id, tokenizer.eos_token_id],
                             params.probe_prompts, params.probe_timesteps, sd_v1_noise_scheduler(), seed=0)
    teacher_maps = attention_maps(teacher.unet, probe)
    teacher_images = None
    hps_scorer, hps = hps_v2_setup(params, prompt_sets)
    rows, samples, maps = [], {}, {}
    for name, pipeline in models.items():
        images = generate_images(pipeline, texts, seeds, params.steps, params.guidance_scale, show_progress=False)
        teacher_images = teacher_images or images
        result = scorer.score(images, texts) if params.world_score else None
        model_maps = attention_maps(pipeline.unet, probe)
        rows.append({
            "model": name,
            "role": roles[name],
            "unet_params": count_params(dict(pipeline.unet.config)),
            "macs_per_forward_m": macs_per_forward(pipeline.unet) / 1e6,
            "latency_ms": median_latency_ms(pipeline.unet, params.latency_repeats),
            "world_score": result.summary["score"] if result else float("nan"),
            **({k: v for k, v in result.summary.items() if k.endswith("_accuracy")} if result else {}),
            "psnr_vs_teacher_db": psnr(teacher_images, images) if name != "teacher" else float("nan"),
            "attention_alignment_with_teacher": map_similarity(teacher_maps, model_maps, probe.word_tokens),
            **(hps_v2_columns(hps_scorer, pipeline, prompt_sets["hps_benchmark"]["styles"], params) if hps_scorer
               else {"hps_v2": float("nan")}),  # unavailable: the reason is in evaluation_notes
        })
        samples[name] = images[: params.grid_prompts]
        maps[name] = model_maps[0]
        logger.info("%-10s %s params, world score %.3f, attention alignment %.3f", name,
                    f"{rows[-1]['unet_params']:,}", rows[-1]["world_score"], rows[-1]["attention_alignment_with_teacher"])
    table = pd.DataFrame(rows)
    teacher_params = table["unet_params"].iloc[0]
    table.insert(3, "params_reduction", 1 - table["unet_params"] / teacher_params)
    log_metrics({f"evaluate.{r['model']}.{k}": r[k] for r in rows
                 for k in ("world_score", "attention_alignment_with_teacher", "latency_ms")})
    grid_rows = {n: samples[n] for n in models if roles[n] in ("teacher", "student", "baseline")}
    grid = comparison_grid(grid_rows, texts[: params.grid_prompts])
    first_words = probe.word_tokens[0].nonzero().flatten().tolist()
    token_names = [tokenizer.convert_ids_to_tokens(int(training_cache["input_ids"][0, i])).replace("</w>", "")
                   for i in first_words]
    attention = attention_figure({n: maps[n][first_words] for n in grid_rows}, token_names)
    notes = {"hps_v2": {"available": hps_scorer is not None, "reason": hps.reason if hps else None,
                        "version": hps_scorer.version if hps_scorer else None,
                        "prompts_per_style": params.hps_prompts_per_style if hps_scorer else None},
             "prompts": len(texts), "steps": params.steps, "guidance_scale": params.guidance_scale}
    return table, _markdown(table, notes), grid, attention, path_plot(table, "world_score" if params.world_score else "hps_v2"), notes


def _markdown(table: pd.DataFrame, notes: dict) -> str:
    columns = ["model", "role", "unet_params", "params_reduction", "macs_per_forward_m", "latency_ms", "world_score",
               "psnr_vs_teacher_db", "attention_alignment_with_teacher"]
    if notes["hps_v2"]["available"]:
        columns += [c for c in table.columns if c.startswith("hps_v2")]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in table[columns].iterrows():
        cells = []
        for column in columns:
            value = row[column]
            if column == "unet_params":
                cells.append(f"{int(value):,}")
            elif column == "params_reduction":
                cells.append(f"{value:.1%}")
            elif isinstance(value, float):
                cells.append("-" if value != value else f"{value:.3f}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    hps = notes["hps_v2"]
    lines.append(f"HPS v2: unavailable ({hps['reason']})." if not hps["available"] else
                 f"HPS v2: {hps['version']}, {hps['prompts_per_style']} benchmark prompts per style, seeds 0..n-1.")
    lines.append(f"{notes['prompts']} held-out prompts, DDIM {notes['steps']} steps, guidance {notes['guidance_scale']}.")
    return "\n".join(lines) + "\n"
