"""Thin nodes of the ``teacher`` pipeline; the training itself lives in ``delta_diff.world`` and ``scoring``."""

from __future__ import annotations

import logging
import torch
from pydantic import BaseModel, ConfigDict

from delta_diff.config_types import Count, PositiveFloat, Probability
from delta_diff.data.image_folder import ImageFolder, ImageFolderContent
from delta_diff.data.latent_cache import encode_latents, encode_prompts, token_ids
from delta_diff.scoring import WorldScorer
from delta_diff.scoring.train_world_scorer import (
    ScorerTrainingConfig,
    attribute_accuracy,
    labels_from_metadata,
    train_attribute_classifier,
)
from delta_diff.tracking import log_metrics, mlflow_metrics_logger
from delta_diff.training import weights_digest
from delta_diff.world import WorldSpec, make_prompt_set, make_world_images, parse_caption
from delta_diff.world.record import world_record
from delta_diff.world.components import (
    TextEncoderConfig,
    TokenizerConfig,
    UNetConfig,
    VAEConfig,
    assemble_pipeline,
    build_text_encoder,
    train_tokenizer,
)
from delta_diff.reporting.image_grid import image_grid
from delta_diff.sd import generate_images
from delta_diff.world.train_unet import UNetTrainingConfig, train_text_conditional_unet
from delta_diff.world.train_vae import (
    VAETrainingConfig,
    images_to_tensor,
    reconstruct,
    reconstruction_mse,
    train_vae,
)

logger = logging.getLogger(__name__)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorldImagesParams(_Strict):
    n_images: Count = 20000
    seed: int = 0


class VAEParams(_Strict):
    model: VAEConfig = VAEConfig()
    training: VAETrainingConfig = VAETrainingConfig()
    checkpoint_dir: str | None = None
    init_from: str | None = None  # a saved AutoencoderKL folder to fine-tune (world v2 starts from v1's VAE)


class UNetParams(_Strict):
    model: UNetConfig = UNetConfig()
    training: UNetTrainingConfig = UNetTrainingConfig()
    checkpoint_dir: str | None = None


class ScorerParams(_Strict):
    training: ScorerTrainingConfig = ScorerTrainingConfig()
    train_on_reconstructions: bool = True
    checkpoint_dir: str | None = None
    # More images of the training split for the scorer alone (the U-Net's stay as they are): world v7's scorer
    # read 99.5 % of its 30,000 training images' shapes right but 93 % of held-out reconstructions'.
    extra_images: WorldImagesParams | None = None


class CompetenceParams(_Strict):
    n_prompts: Count = 96
    steps: Count = 25
    guidance_scale: PositiveFloat = 4.0
    seed: int = 1000
    n_scorer_images: Count = 1000
    grid_images: Count = 32
    min_shape_accuracy: Probability = 0.8
    min_colour_accuracy: Probability = 0.8
    min_scorer_accuracy: Probability = 0.95
    # Optional (world v2): every attribute of the teacher's samples, and the scorer on VAE reconstructions.
    min_attribute_accuracy: Probability | None = None
    min_reconstruction_accuracy: Probability | None = None


def _pixels(folder: ImageFolder) -> torch.Tensor:
    return images_to_tensor([folder.load_image(i) for i in range(len(folder))])


def make_world_training_images(world: WorldSpec, params: WorldImagesParams) -> ImageFolderContent:
    images, metadata = make_world_images(world, "train", params.n_images, params.seed)
    return ImageFolderContent(images=images, metadata=metadata)


def fit_tokenizer(train_images: ImageFolder, config: TokenizerConfig):
    tokenizer = train_tokenizer(train_images.captions, config)
    logger.info("tokenizer: %d tokens, max length %d", len(tokenizer), tokenizer.model_max_length)
    return tokenizer


def make_text_encoder(tokenizer, config: TextEncoderConfig):
    return build_text_encoder(tokenizer, config)


def fit_vae(train_images: ImageFolder, params: VAEParams):
    pixels = _pixels(train_images)
    vae, _ = train_vae(pixels, params.model, params.training, params.checkpoint_dir, mlflow_metrics_logger(),
                       init_from=params.init_from)
    mse = reconstruction_mse(vae, pixels[:2048])
    logger.info("VAE reconstruction MSE %.4f, latent scaling factor %.4f", mse, vae.config.scaling_factor)
    log_metrics({"vae.reconstruction_mse": mse, "vae.scaling_factor": vae.config.scaling_factor})
    return vae


def fit_world_scorer(train_images: ImageFolder, vae, world: WorldSpec, params: ScorerParams):
    pixels = _pixels(train_images)
    vocabulary = {a: world.values(a) for a in world.attributes}
    labels = labels_from_metadata(train_images.metadata, vocabulary)
    if params.extra_images is not None:
        extra, metadata = make_world_images(world, "train", params.extra_images.n_images, params.extra_images.seed)
        extra_labels = labels_from_metadata(metadata, vocabulary)
        pixels = torch.cat([pixels, images_to_tensor(extra)])
        labels = {a: torch.cat([labels[a], extra_labels[a]]) for a in labels}
        logger.info("scorer: %d training images (%d of them its own)", len(pixels), len(extra))
    reconstructions = reconstruct(vae, pixels) if params.train_on_reconstructions else None
    classifier, _ = train_attribute_classifier(pixels, reconstructions, labels, vocabulary, params.training,
                                               mlflow_metrics_logger(), checkpoint_dir=params.checkpoint_dir)
    return classifier


def fit_unet(train_images: ImageFolder, vae, tokenizer, text_encoder, params: UNetParams):
    pixels = _pixels(train_images)
    latent_mean, latent_std = encode_latents(vae, pixels)
    text = encode_prompts(tokenizer, text_encoder, train_images.captions)
    empty = encode_prompts(tokenizer, text_encoder, [""])
    # The job is named by its exact inputs (images, token ids, the VAE's and text encoder's weights), not by the
    # latents and embeddings computed from them: their last bits differ between machines (world v7's teacher,
    # parked on one machine, was refused on the next), so a training carried across machines resumes.
    ids = token_ids(tokenizer, train_images.captions + [""])
    made_from = ({"vae": weights_digest(vae), "text_encoder": weights_digest(text_encoder)}, (pixels, ids))
    unet, _ = train_text_conditional_unet(latent_mean, latent_std, text, empty, params.model, params.training,
                                          params.checkpoint_dir, mlflow_metrics_logger(), made_from=made_from)
    return unet


def assemble_teacher(tokenizer, text_encoder, vae, unet):
    return assemble_pipeline(tokenizer, text_encoder, vae, unet)


def record_teacher_world(embedded_teacher, world: WorldSpec) -> dict:
    """The world the teacher was trained on, in its order, for its folder's ``world.json``: every later run
    checks its own world against it before any node runs (``hooks.RunInputsCheck``). Takes the saved teacher
    only so that it runs after the folder is written (a re-save replaces the whole folder)."""
    del embedded_teacher
    return world_record(world)


def check_teacher_competence(teacher, classifier, world: WorldSpec, params: CompetenceParams):
    """Teacher images for held-out prompts, judged by the scorer; the scorer itself judged on real held-out
    images and on their VAE reconstructions. ``passed`` says whether the thresholds hold; a failure is logged
    as an error (nothing downstream means anything with an incompetent teacher)."""
    scorer = WorldScorer(classifier, lambda prompt: parse_caption(prompt, world))
    prompts = make_prompt_set(world, "eval", params.n_prompts, params.seed)
    images = generate_images(teacher, list(prompts.text), list(prompts.seed), params.steps, params.guidance_scale)
    teacher_result = scorer.score(images, list(prompts.text))

    real_images, real_meta = make_world_images(world, "eval", params.n_scorer_images, params.seed)
    pixels = images_to_tensor(real_images)
    labels = labels_from_metadata(real_meta, {a: world.values(a) for a in world.attributes})
    decoded = reconstruct(teacher.vae, pixels)
    real_acc, recon_acc = attribute_accuracy(classifier, pixels, labels), attribute_accuracy(classifier, decoded, labels)

    report = {
        "teacher_on_held_out_prompts": teacher_result.summary,
        "scorer_on_real_held_out_images": real_acc,
        "scorer_on_vae_reconstructions": recon_acc,
        "sampling": {"steps": params.steps, "guidance_scale": params.guidance_scale, "n_prompts": params.n_prompts,
                     "seeds": f"{params.seed}..{params.seed + params.n_prompts - 1}"},
        "chance": {a: 1 / len(world.values(a)) for a in world.attributes},
    }
    log_metrics({f"competence.teacher.{k}": v for k, v in teacher_result.summary.items()})
    log_metrics({f"competence.scorer_real.{k}": v for k, v in real_acc.items()})
    failures = []
    summary = teacher_result.summary
    # v1: "shape_accuracy"; world v2: "left_shape_accuracy", "right_shape_accuracy" (each checked)
    for kind, minimum in (("shape", params.min_shape_accuracy), ("colour", params.min_colour_accuracy)):
        for key in [k for k in summary if k == f"{kind}_accuracy" or k.endswith(f"_{kind}_accuracy")]:
            if summary[key] < minimum:
                name = key.removesuffix("_accuracy").replace("_", " ")
                failures.append(f"{name} {summary[key]:.2f} < {minimum}")
    if params.min_attribute_accuracy is not None:
        for key in [k for k in summary if k.endswith("_accuracy")]:
            if summary[key] < params.min_attribute_accuracy:
                failures.append(f"teacher {key} {summary[key]:.3f} < {params.min_attribute_accuracy}")
    worst_scorer = min(real_acc.values())
    if worst_scorer < params.min_scorer_accuracy:
        failures.append(f"scorer {worst_scorer:.3f} < {params.min_scorer_accuracy} on real images")
    if params.min_reconstruction_accuracy is not None and min(recon_acc.values()) < params.min_reconstruction_accuracy:
        failures.append(f"scorer {min(recon_acc.values()):.3f} < {params.min_reconstruction_accuracy} on VAE "
                        "reconstructions")
    if world.layout != "single":  # binding: every attribute of every object right in one image
        report["teacher_all_attributes_right"] = float((teacher_result.per_image["score"] == 1.0).mean())
    report["passed"] = not failures
    report["failures"] = failures
    for line in (f"{k}: {v:.3f}" for k, v in teacher_result.summary.items()):
        logger.info("teacher on held-out prompts, %s", line)
    n = params.grid_images
    grid = image_grid(images[:n], list(prompts.text[:n]))
    if failures:
        logger.error("teacher is not competent: %s", "; ".join(failures))
    return report, grid
