"""The whole parameter tree of the project as one model, so a run checks *every* setting when it starts, not only
those of the nodes it happens to run: a misspelled key anywhere (``distil_stage`` at the top level, a typo in a
group no node of this run reads) is refused naming the key and the nearest known one, and every value is
range-checked by the group's own model."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from delta_diff.pipelines.architecture_search.nodes import SpaceReportParams
from delta_diff.pipelines.architecture_search.search_nodes import SearchParams
from delta_diff.pipelines.data_prep.nodes import CacheParams, PromptSetsParams, TrainingImagesParams
from delta_diff.pipelines.distill_stage.nodes import DistillStageParams, StudentParams
from delta_diff.pipelines.evaluate.nodes import EvaluateParams
from delta_diff.pipelines.path.nodes import PathParams
from delta_diff.pipelines.teacher.nodes import CompetenceParams, ScorerParams, UNetParams, VAEParams, WorldImagesParams
from delta_diff.sd import DevicePolicy
from delta_diff.world import WorldSpec
from delta_diff.world.components import TextEncoderConfig, TokenizerConfig


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataPrepGroup(_Group):
    training_images: TrainingImagesParams
    prompt_sets: PromptSetsParams = PromptSetsParams()
    cache: CacheParams = CacheParams()


class ArchitectureSearchGroup(_Group):
    space_report: SpaceReportParams = SpaceReportParams()
    search: SearchParams = SearchParams()


class DistillStageGroup(_Group):
    student: StudentParams = StudentParams()
    stage: DistillStageParams = DistillStageParams()
    baseline: DistillStageParams = DistillStageParams()


class TeacherGroup(_Group):
    train_images: WorldImagesParams = WorldImagesParams()
    tokenizer: TokenizerConfig = TokenizerConfig()
    text_encoder: TextEncoderConfig = TextEncoderConfig()
    vae: VAEParams = VAEParams()
    scorer: ScorerParams = ScorerParams()
    unet: UNetParams = UNetParams()
    competence: CompetenceParams = CompetenceParams()

    @model_validator(mode="after")
    def _scorer_images_are_new(self) -> TeacherGroup:
        extra = self.scorer.extra_images
        if extra is not None and extra.seed == self.train_images.seed:
            raise ValueError(f"scorer.extra_images.seed is {extra.seed}, as teacher.train_images.seed: the same "
                             "seed draws the same images again; give the scorer's images a seed of their own")
        return self


class ProjectParameters(_Group):
    world: WorldSpec = WorldSpec()
    runtime: DevicePolicy = DevicePolicy()
    path: PathParams = PathParams()
    data_prep: DataPrepGroup
    architecture_search: ArchitectureSearchGroup = ArchitectureSearchGroup()
    distill_stage: DistillStageGroup = DistillStageGroup()
    evaluate: EvaluateParams = EvaluateParams()
    teacher: TeacherGroup = TeacherGroup()


class ParameterError(ValueError):
    """A run's parameters are invalid; the message names each bad key (and the nearest known key for a typo)."""


def _known_keys(location: tuple) -> list[str]:
    """The keys allowed where ``location`` (a pydantic error location) ends."""
    model: Any = ProjectParameters
    for part in location[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = field.annotation
    return list(getattr(model, "model_fields", {}))


def check_parameters(parameters: dict[str, Any]) -> ProjectParameters:
    """Validate the whole tree; raise ``ParameterError`` listing every problem as ``key: what is wrong``."""
    try:
        return ProjectParameters(**parameters)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            location = tuple(item["loc"])
            key = ".".join(str(part) for part in location)
            if item["type"] == "extra_forbidden":
                nearest = difflib.get_close_matches(str(location[-1]), _known_keys(location), n=1, cutoff=0.6)
                hint = f"; did you mean {'.'.join([*map(str, location[:-1]), nearest[0]])}?" if nearest else \
                    f"; known keys here: {', '.join(_known_keys(location)) or '(none)'}"
                problems.append(f"{key}: unknown parameter{hint}")
            else:
                problems.append(f"{key}: {item['msg']} (got {item.get('input')!r})")
        raise ParameterError(f"{len(problems)} bad parameter(s): " + "; ".join(problems)) from None
