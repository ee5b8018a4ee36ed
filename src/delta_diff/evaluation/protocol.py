"""The evaluation protocol, Kedro-free: every model of the path and the baseline measured the same way.

Per model: U-Net parameters, MACs and latency per forward (at the tokenizer's text length), the image metric on
held-out prompts with fixed seeds (the embedded world's scorer, when the teacher is the world's), PSNR of its
images against the teacher's for the same prompt and seed, cross-attention alignment with the teacher on a fixed
probe, and HPS v2 per benchmark style (first prompts of each, seeds 0..n-1) with their average, when a local
checkpoint is there. Models must be placed on one device (``DevicePolicy.place_frozen``) by the caller.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from PIL import Image

from delta_diff.architecture import count_params
from delta_diff.sd import generate_images
from delta_diff.similarity import SimilarityProbe, attention_maps, map_similarity

from .cost import macs_per_forward, median_latency_ms
from .fidelity import psnr

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Protocol:
    steps: int = 25
    guidance_scale: float = 4.0
    latency_repeats: int = 20
    grid_prompts: int = 8
    hps_prompts_per_style: int = 8
    resolution: int | None = None  # px; None: each U-Net's native size


@dataclass
class Evaluation:
    table: pd.DataFrame  # one row per model, the paper's shape
    samples: dict[str, list[Image.Image]]  # each model's first grid_prompts images
    maps: dict[str, Any]  # each model's attention maps of the probe's first row (tokens x R x R)
    notes: dict[str, Any] = field(default_factory=dict)


def hps_v2_columns(scorer, pipeline, styles: dict[str, list[str]], protocol: Protocol) -> dict[str, float]:
    """HPS v2 per benchmark style (first prompts of each, seeds 0..n-1) and their average, as table columns
    named with the HPS version (``hps_v2.0_photo``, ..., ``hps_v2.0``)."""
    columns = {}
    for style, prompts in styles.items():
        prompts = prompts[: protocol.hps_prompts_per_style]
        images = generate_images(pipeline, prompts, list(range(len(prompts))), protocol.steps,
                                 protocol.guidance_scale, show_progress=False, resolution=protocol.resolution)
        columns[f"hps_v2_{style}"] = scorer.score(images, prompts).summary["score"]
    columns["hps_v2"] = sum(columns.values()) / len(columns)
    return columns


def evaluate_models(models: dict[str, Any], roles: dict[str, str], prompts: list[dict], probe: SimilarityProbe,
                    protocol: Protocol, world_scorer=None, hps_scorer=None,
                    hps_styles: dict[str, list[str]] | None = None) -> Evaluation:
    """``models`` maps names to pipelines, the teacher first; ``prompts`` are held-out ``{"text", "seed"}``."""
    texts, seeds = [p["text"] for p in prompts], [int(p["seed"]) for p in prompts]
    teacher = next(iter(models.values()))
    tokens = teacher.tokenizer.model_max_length
    latent_size = protocol.resolution // teacher.vae_scale_factor if protocol.resolution else None
    teacher_maps = attention_maps(teacher.unet, probe)
    teacher_images = None
    rows, samples, maps = [], {}, {}
    for name, pipeline in models.items():
        images = generate_images(pipeline, texts, seeds, protocol.steps, protocol.guidance_scale, show_progress=False,
                                 resolution=protocol.resolution)
        teacher_images = teacher_images or images
        result = world_scorer.score(images, texts) if world_scorer is not None else None
        model_maps = attention_maps(pipeline.unet, probe)
        rows.append({
            "model": name,
            "role": roles[name],
            "unet_params": count_params(dict(pipeline.unet.config)),
            "macs_per_forward_m": macs_per_forward(pipeline.unet, tokens=tokens, latent_size=latent_size) / 1e6,
            "latency_ms": median_latency_ms(pipeline.unet, protocol.latency_repeats, tokens=tokens,
                                            latent_size=latent_size),
            "world_score": result.summary["score"] if result else float("nan"),
            **({k: v for k, v in result.summary.items() if k.endswith("_accuracy")} if result else {}),
            "psnr_vs_teacher_db": psnr(teacher_images, images) if name != "teacher" else float("nan"),
            "attention_alignment_with_teacher": map_similarity(teacher_maps, model_maps, probe.word_tokens),
            **(hps_v2_columns(hps_scorer, pipeline, hps_styles or {}, protocol) if hps_scorer
               else {"hps_v2": float("nan")}),  # unavailable: the caller's notes say why
        })
        samples[name] = images[: protocol.grid_prompts]
        maps[name] = model_maps[0]
        logger.info("%-10s %s params, world score %.3f, attention alignment %.3f", name,
                    f"{rows[-1]['unet_params']:,}", rows[-1]["world_score"], rows[-1]["attention_alignment_with_teacher"])
    table = pd.DataFrame(rows)
    table.insert(3, "params_reduction", 1 - table["unet_params"] / table["unet_params"].iloc[0])
    return Evaluation(table, samples, maps)


def results_markdown(table: pd.DataFrame, notes: dict) -> str:
    """The results table as Markdown, with how it was measured underneath."""
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
                 f"HPS {hps['version']}: {hps['prompts_per_style']} benchmark prompts per style, seeds 0..n-1.")
    lines.append(f"{notes['prompts']} held-out prompts at {notes['resolution']} px, {notes['sampler']} "
                 f"{notes['steps']} steps, guidance {notes['guidance_scale']}; MACs and latency per U-Net forward at "
                 f"that size and {notes['text_tokens']} text tokens; device {notes['device']}, frozen dtype "
                 f"{notes['frozen_dtype']}.")
    return "\n".join(lines) + "\n"
