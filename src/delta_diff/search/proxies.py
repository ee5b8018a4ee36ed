"""Cheap proxies of how well a pruned candidate will distil, computed without training (DESIGN.md §1 step 2):

* ``phi``  semantic similarity of its cross-attention maps to the parent's (``delta_diff.similarity``);
* ``theta`` the image metric of a few images it generates (the configured scorer: the world's, or HPS v2);
* ``eps_mse`` how far its noise prediction is from the parent's on the probe (cheap, also allowed).

Each genome is evaluated once; results are cached by genome. Everything runs where the parent pipeline was
placed (``DevicePolicy.place_frozen``): candidates are pruned on the parent's device and dtype, and the probe's
tensors are moved there once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from delta_diff.architecture import ArchitectureSpace, Genome, prune
from delta_diff.scoring import ImageScorer
from delta_diff.sd import generate_images, unet_swapped_in
from delta_diff.similarity import SimilarityProbe, attention_maps, map_similarity

from .candidates import params_of


@dataclass
class ThetaSetup:
    prompts: list[str]
    seeds: list[int]
    steps: int = 10
    guidance_scale: float = 4.0
    resolution: int | None = None  # None: the U-Net's native size


@dataclass
class ProxyEvaluator:
    parent_pipeline: object  # StableDiffusionPipeline whose unet is the parent
    space: ArchitectureSpace
    probe: SimilarityProbe
    scorer: ImageScorer
    theta: ThetaSetup
    cache: dict[Genome, dict] = field(default_factory=dict)

    def __post_init__(self):
        self.parent = self.parent_pipeline.unet
        if dict(self.parent.config)["block_out_channels"] != self.space.parent_config["block_out_channels"]:
            raise ValueError("the parent U-Net does not match the genome space it is searched in")
        self.parent_maps = attention_maps(self.parent, self.probe)
        with torch.no_grad():
            self.parent_eps = self._eps(self.parent)

    @property
    def evaluations(self) -> int:
        return len(self.cache)

    def _eps(self, unet) -> torch.Tensor:
        probe, device, dtype = self.probe, unet.device, unet.dtype
        with torch.no_grad():
            return unet(probe.noisy_latents.to(device, dtype), probe.timesteps.to(device),
                        encoder_hidden_states=probe.text_embeddings.to(device, dtype)).sample.float()

    def images(self, unet):
        with unet_swapped_in(self.parent_pipeline, unet) as pipeline:
            return generate_images(pipeline, self.theta.prompts, self.theta.seeds, self.theta.steps,
                                   self.theta.guidance_scale, batch_size=len(self.theta.prompts), show_progress=False,
                                   resolution=self.theta.resolution)

    def theta_of(self, unet) -> float:
        result = self.scorer.score(self.images(unet), self.theta.prompts)
        if not result.available:
            raise RuntimeError(f"image metric {result.metric} unavailable: {result.reason}")
        return float(result.summary["score"])

    def prune(self, genome: Genome):
        """The candidate, pruned from the parent's weights. A path stage's ``NestedSpace`` speaks in teacher
        coordinates, so its genome is first translated into the parent's own space."""
        if hasattr(self.space, "parent_genome"):
            return prune(self.parent, self.space.parent_genome(genome))
        return prune(self.parent, genome, self.space)

    def evaluate(self, genome: Genome) -> dict:
        genome = self.space.canonical(genome)
        if genome in self.cache:
            return self.cache[genome]
        start = time.perf_counter()
        candidate = self.prune(genome).eval()
        phi = map_similarity(self.parent_maps, attention_maps(candidate, self.probe), self.probe.word_tokens)
        eps_mse = float(torch.nn.functional.mse_loss(self._eps(candidate), self.parent_eps))
        theta = self.theta_of(candidate)
        result = {
            "genome": self.space.to_string(genome),
            "params": params_of(self.space, genome),
            "phi": phi,
            "theta": theta,
            "eps_mse": eps_mse,
            "proxy_seconds": time.perf_counter() - start,
        }
        self.cache[genome] = result
        return result
