"""Deterministic samples of the world: scenes, their captions and images, and prompt sets."""

from __future__ import annotations

import random

import pandas as pd
from PIL import Image

from .render import render_scene
from .spec import (
    ATTRIBUTES,
    PAIR_TEMPLATES,
    QUAD_TEMPLATES,
    TEMPLATES,
    PairScene,
    QuadScene,
    Scene,
    WorldSpec,
    caption,
)

TEMPLATES_OF_LAYOUT = {"single": TEMPLATES, "pair": PAIR_TEMPLATES, "quad": QUAD_TEMPLATES}


def sample_scenes(spec: WorldSpec, split: str, n: int, seed: int) -> list[Scene | PairScene | QuadScene]:
    """``n`` scenes whose attribute combinations come from ``split`` ("train", "search" or "eval"), with jitter."""
    if spec.layout == "quad":
        return _sample_quad_scenes(spec, split, n, seed)
    combos = spec.split()[split]
    if not combos:
        raise ValueError(f"the world's {split!r} split is empty; raise held_out_fraction or the vocabulary")
    rng = random.Random(f"{seed}:{split}")
    scenes = []
    if spec.layout == "pair":
        for _ in range(n):
            values = dict(zip(spec.attributes, rng.choice(combos)))
            jitter = tuple((rng.uniform(-0.03, 0.03), rng.uniform(-0.15, 0.15)) for _ in range(2))
            scale = (rng.uniform(0.9, 1.1), rng.uniform(0.9, 1.1))
            rotation = (rng.uniform(-12, 12), rng.uniform(-12, 12))
            scenes.append(PairScene(**values, jitter=jitter, scale=scale, rotation=rotation))
        return scenes
    for _ in range(n):
        values = dict(zip(ATTRIBUTES, rng.choice(combos)))
        scenes.append(
            Scene(
                **values,
                jitter=(rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05)),
                scale=rng.uniform(0.85, 1.15),
                rotation=rng.uniform(-12, 12),
            )
        )
    return scenes


def _sample_quad_scenes(spec: WorldSpec, split: str, n: int, seed: int) -> list[QuadScene]:
    rng = random.Random(f"{seed}:{split}")
    scenes = []
    for _ in range(n):
        values = dict(zip(spec.attributes, spec.draw_combination(split, rng)))
        # Jitter and scale kept small enough that a large object stays in its quadrant and sizes never overlap
        # (0.25 x 1.07 < 0.32 x 0.93).
        jitter = tuple((rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03)) for _ in range(4))
        scale = tuple(rng.uniform(0.93, 1.07) for _ in range(4))
        rotation = tuple(rng.uniform(-12, 12) for _ in range(4))
        scenes.append(QuadScene(values, jitter=jitter, scale=scale, rotation=rotation))
    return scenes


def make_world_images(spec: WorldSpec, split: str, n: int, seed: int) -> tuple[list[Image.Image], pd.DataFrame]:
    """Images and their metadata (``file_name,text`` plus one column per attribute), same seed -> same bytes."""
    scenes = sample_scenes(spec, split, n, seed)
    rng = random.Random(f"{seed}:{split}:templates")
    templates = TEMPLATES_OF_LAYOUT[spec.layout]
    rows = []
    for i, scene in enumerate(scenes):
        rows.append({"file_name": f"images/{i:05d}.png", "text": caption(scene, rng.randrange(len(templates))),
                     **scene.attributes(), "split": split})
    return [render_scene(s, spec) for s in scenes], pd.DataFrame(rows)


def make_prompt_set(spec: WorldSpec, split: str, n: int, seed: int) -> pd.DataFrame:
    """Prompts (with the attributes they ask for) for sampling and scoring from one split's combinations (``search``
    and ``eval`` are disjoint held-out ones), cycling through all of them before repeating so that every one is judged
    (a hashed layout's splits hold millions: there ``n`` distinct ones are drawn)."""
    if spec.layout == "quad":
        return _quad_prompt_set(spec, split, n, seed)
    combos = spec.split()[split]
    if not combos:
        raise ValueError(f"the world's {split!r} split is empty; raise world.held_out_fraction (or, for "
                         "'search', world.search_fraction)")
    rng = random.Random(f"{seed}:{split}:prompts")
    order = list(combos)
    rng.shuffle(order)
    rows = []
    scene_type = Scene if spec.layout == "single" else PairScene
    for i in range(n):
        values = dict(zip(spec.attributes, order[i % len(order)]))
        rows.append({"text": caption(scene_type(**values), template=i), **values, "seed": seed + i})
    return pd.DataFrame(rows)


def _quad_prompt_set(spec: WorldSpec, split: str, n: int, seed: int) -> pd.DataFrame:
    rng = random.Random(f"{seed}:{split}:prompts")
    drawn: dict[tuple[str, ...], None] = {}  # insertion-ordered set
    while len(drawn) < n:
        drawn[spec.draw_combination(split, rng)] = None
    rows = []
    for i, combination in enumerate(drawn):
        values = dict(zip(spec.attributes, combination))
        rows.append({"text": caption(QuadScene(values), template=i), **values, "seed": seed + i})
    return pd.DataFrame(rows)
