"""Every range constraint of every settings model, walked: a value just outside each bound (and NaN / infinity
where the setting must be finite) is refused naming the field; the defaults themselves are valid."""

from __future__ import annotations

import math
import typing

import annotated_types
import pytest
from pydantic import BaseModel, ValidationError

from delta_diff.distill import DistillConfig
from delta_diff.pipelines.architecture_search.search_nodes import BudgetParams, ProbeParams, SurrogateDataParams, ThetaParams
from delta_diff.pipelines.data_prep.nodes import CacheParams, PromptSetsParams, TrainingImagesParams
from delta_diff.pipelines.distill_stage.nodes import DistillStageParams, StudentParams
from delta_diff.pipelines.evaluate.nodes import EvaluateParams
from delta_diff.pipelines.path.nodes import FinalStudent, PathParams
from delta_diff.pipelines.teacher.nodes import CompetenceParams, WorldImagesParams
from delta_diff.scoring.train_world_scorer import ScorerTrainingConfig
from delta_diff.search.evolution import EvolutionConfig
from delta_diff.search.surrogate import SurrogateConfig
from delta_diff.world.components import TextEncoderConfig, TokenizerConfig, UNetConfig, VAEConfig
from delta_diff.world.train_unet import UNetTrainingConfig
from delta_diff.world.train_vae import VAETrainingConfig

MODELS = [DistillConfig, BudgetParams, ProbeParams, ThetaParams, SurrogateDataParams, CacheParams, PromptSetsParams,
          TrainingImagesParams, DistillStageParams, StudentParams, EvaluateParams, FinalStudent, PathParams,
          CompetenceParams, WorldImagesParams, ScorerTrainingConfig, EvolutionConfig, SurrogateConfig,
          TextEncoderConfig, TokenizerConfig, UNetConfig, VAEConfig, UNetTrainingConfig, VAETrainingConfig]


def _constraints(field) -> tuple[list, bool]:
    """(annotated-types bounds, whether it is a list of such values) of a field, through Optional and list."""
    found, is_list = list(field.metadata), False
    stack = [field.annotation]
    while stack:
        annotation = stack.pop()
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            found += [m for m in typing.get_args(annotation)[1:]]
            for inner in typing.get_args(annotation)[1:]:
                found += list(getattr(inner, "metadata", []))
        elif origin is list:
            is_list = True
            stack += list(typing.get_args(annotation))
        elif origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            stack += list(typing.get_args(annotation))
    return found, is_list


def _bad_values(constraints, integer: bool) -> list:
    bad = []
    for c in constraints:
        step = 1 if integer else 1e-9
        if isinstance(c, annotated_types.Ge):
            bad.append(c.ge - step)
        elif isinstance(c, annotated_types.Gt):
            bad.append(c.gt)
        elif isinstance(c, annotated_types.Le):
            bad.append(c.le + step)
        elif isinstance(c, annotated_types.Lt):
            bad.append(c.lt)
        elif getattr(c, "allow_inf_nan", None) is False:
            bad += [math.nan, math.inf]
    return bad


def _cases():
    for model in MODELS:
        for name, field in model.model_fields.items():
            constraints, is_list = _constraints(field)
            default = field.get_default(call_default_factory=True)
            integer = isinstance(default, int) or (is_list and default and isinstance(default[0], int))
            for value in _bad_values(constraints, integer):
                yield pytest.param(model, name, [value] if is_list else value, id=f"{model.__name__}.{name}={value}")


CASES = list(_cases())
REQUIRED = {TrainingImagesParams: {"folder": "data/01_raw/images"}}  # fields without a default


def test_every_model_has_valid_defaults_and_the_walk_finds_constraints():
    for model in MODELS:
        model(**REQUIRED.get(model, {}))
    assert len(CASES) > 80  # every count, fraction, rate and weight of the settings above


@pytest.mark.parametrize("model,name,value", CASES)
def test_a_value_outside_the_range_is_refused_naming_the_key(model: type[BaseModel], name: str, value):
    with pytest.raises(ValidationError) as error:
        model(**{**REQUIRED.get(model, {}), name: value})
    locations = [".".join(str(part) for part in e["loc"]) for e in error.value.errors()]
    assert any(location.split(".")[0] == name for location in locations), (locations, str(error.value))


@pytest.mark.parametrize("setting", [{"steps": 0}, {"steps": -5}, {"batch_size": 0}, {"checkpoint_every": 0},
                                     {"learning_rate": math.nan}, {"caption_dropout": 1.5}, {"ema_decay": 1.5},
                                     {"keep_checkpoints": 0}, {"log_every": 0}, {"warmup_steps": -1},
                                     {"task_weight": math.inf}])
def test_the_distillation_settings_a_user_tried_are_refused(setting):
    """Issue 16's list: each of these used to be accepted (0 steps saved an untrained student as 'distilled')."""
    with pytest.raises(ValidationError, match=next(iter(setting))):
        DistillConfig(**setting)


def test_an_unknown_student_preset_is_refused_listing_the_known_ones():
    with pytest.raises(ValidationError, match="'teacher', 'bk-sdm-base', 'bk-sdm-small' or 'bk-sdm-tiny'"):
        StudentParams(preset="bk-sdm-huge")
