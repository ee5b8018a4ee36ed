"""The embedded offline world: synthetic captioned images, a tiny SD-family pipeline trained on them, its scorer."""

from .captions import caption, parse_caption
from .generate import make_prompt_set, make_world_images, sample_scenes
from .render import render_scene
from .spec import (
    ATTRIBUTES,
    COUNT_ATTRIBUTES,
    PAIR_ATTRIBUTES,
    QUAD_ATTRIBUTES,
    QUAD_SLOTS,
    CountScene,
    PairScene,
    QuadScene,
    Scene,
    WorldSpec,
)

__all__ = [
    "ATTRIBUTES",
    "COUNT_ATTRIBUTES",
    "CountScene",
    "PAIR_ATTRIBUTES",
    "PairScene",
    "QUAD_ATTRIBUTES",
    "QUAD_SLOTS",
    "QuadScene",
    "Scene",
    "WorldSpec",
    "caption",
    "make_prompt_set",
    "make_world_images",
    "parse_caption",
    "render_scene",
    "sample_scenes",
]
