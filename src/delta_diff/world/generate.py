"""Deterministic samples of the world: scenes, their captions and images, and prompt sets."""

from __future__ import annotations

import random

import pandas as pd
from PIL import Image

from .captions import TEMPLATES_OF_LAYOUT, caption
from .render import render_scene
from .spec import (
    ATTRIBUTES,
    GROUPS,
    CountScene,
    PairScene,
    QuadScene,
    Scene,
    WorldSpec,
)

# Count layout: the gap between two objects' outlines (image fractions), so that objects never touch and can be
# counted; triangles reach 1.25x an object's half-width (render._draw_shape), the scale is at most 1.07.
COUNT_GAP = 0.04
COUNT_REACH = 1.25 * 1.07


def sample_scenes(spec: WorldSpec, split: str, n: int, seed: int) -> list[Scene | PairScene | QuadScene | CountScene]:
    """``n`` scenes whose attribute combinations come from ``split`` ("train", "search" or "eval"), with jitter."""
    if spec.layout == "quad":
        return _sample_quad_scenes(spec, split, n, seed)
    if spec.layout == "count":
        return _sample_count_scenes(spec, split, n, seed)
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


def _sample_count_scenes(spec: WorldSpec, split: str, n: int, seed: int) -> list[CountScene]:
    combos = spec.split()[split]
    if not combos:
        raise ValueError(f"the world's {split!r} split is empty; raise held_out_fraction or the vocabulary")
    rng = random.Random(f"{seed}:{split}")
    scenes = []
    for _ in range(n):
        values = dict(zip(spec.attributes, rng.choice(combos)))
        n_objects = sum(spec.count_of(values[f"{g}_count"]) for g in GROUPS)
        scenes.append(CountScene(values, centres=free_centres(spec, n_objects, rng),
                                 scale=tuple(rng.uniform(0.93, 1.07) for _ in range(n_objects)),
                                 rotation=tuple(rng.uniform(-12, 12) for _ in range(n_objects))))
    return scenes


def free_centres(spec: WorldSpec, n_objects: int, rng: random.Random) -> tuple[tuple[float, float], ...]:
    """``n_objects`` centres, uniform over the image, every object inside it and ``COUNT_GAP`` clear of the others
    (rejection sampling, restarted from scratch when a placement gets stuck)."""
    reach = spec.count_object_size / 2 * COUNT_REACH
    low, high, apart = reach + 0.01, 1 - reach - 0.01, 2 * reach + COUNT_GAP
    for _ in range(200):
        centres: list[tuple[float, float]] = []
        for _ in range(50 * n_objects):
            x, y = rng.uniform(low, high), rng.uniform(low, high)
            if all((x - u) ** 2 + (y - v) ** 2 >= apart**2 for u, v in centres):
                centres.append((x, y))
                if len(centres) == n_objects:
                    return tuple(centres)
    raise ValueError(f"{n_objects} objects of world.count_object_size {spec.count_object_size} do not fit in the "
                     "image without touching: lower count_object_size or the largest of world.counts")


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
    for i in range(n):
        values = dict(zip(spec.attributes, order[i % len(order)]))
        scene = (CountScene(values) if spec.layout == "count" else
                 Scene(**values) if spec.layout == "single" else PairScene(**values))
        rows.append({"text": caption(scene, template=i), **values, "seed": seed + i})
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
