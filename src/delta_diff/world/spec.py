"""The synthetic captioned-image world: which attributes exist, how they split, what one image holds (captions:
``captions.py``).

Layouts: one object per image (v1: shape, colour, size, position, background), two objects in left/right slots
(v2-v5), four, one per quadrant (v6), or two groups of objects counted, at free places (v7), so a prompt such as
"a small red circle at the top left on a blue background" has several parts that cross-attention must put in the
right place. Whole attribute combinations are held out for evaluation, so the teacher is judged on prompts it
never saw in training.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

ATTRIBUTES = ("shape", "colour", "size", "position", "background")

# World v2 ("pair" layout): two objects in fixed left/right slots, each with its own shape, colour and size, on one
# background. Getting each attribute onto the right object (attribute binding) is what small models get wrong.
SLOTS = ("left", "right")
OBJECT_ATTRIBUTES = ("shape", "colour", "size")
PAIR_ATTRIBUTES = tuple(f"{slot}_{a}" for slot in SLOTS for a in OBJECT_ATTRIBUTES) + ("background",)

# World v6 ("quad" layout): four objects, one per quadrant, each with its own shape, colour and size: twice v2's
# binding load on the same 32-px image, so that a pruned student's capacity shows (issue 15).
QUAD_SLOTS = ("top_left", "top_right", "bottom_left", "bottom_right")
QUAD_ATTRIBUTES = tuple(f"{slot}_{a}" for slot in QUAD_SLOTS for a in OBJECT_ATTRIBUTES) + ("background",)
# World v7 ("count" layout): two groups of identical objects, each with its own count (one to four), colour and
# shape, at free places that the prompt does not give, on one background. v2-v6 bound each word to a fixed region
# (slot or quadrant), a local lookup that the pruned students learn as well as the teacher; here the model must
# decide where objects go and how many there are across the whole image, the global work that BK-SDM's removed
# mid-block and innermost stages do (issue 15). The first group is the one whose colour comes first in
# ``WorldSpec.colours``, so the image alone says which group is which (the scorer reads images).
GROUPS = ("first", "second")
GROUP_ATTRIBUTES = ("count", "colour", "shape")
COUNT_ATTRIBUTES = tuple(f"{group}_{a}" for group in GROUPS for a in GROUP_ATTRIBUTES) + ("background",)
COUNT_WORDS = ("one", "two", "three", "four")
# Layouts whose compositions are too many to list (v6: 72^4 x 4 = 107 M) are split by a hash of each composition
# instead of a shuffled list (``WorldSpec.split_of``).
HASHED_LAYOUTS = ("quad",)

NUMBER_WORDS = ("one", "two", "three", "four", "five", "six")

POSITION_PHRASES = {
    "top left": "at the top left",
    "top right": "at the top right",
    "bottom left": "at the bottom left",
    "bottom right": "at the bottom right",
    "center": "in the center",
}


class WorldSpec(BaseModel):
    """The world's vocabulary and image size; part of the teacher's configuration (``params:world``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    image_size: int = 32
    shapes: tuple[str, ...] = ("circle", "square", "triangle")
    colours: dict[str, tuple[int, int, int]] = {
        "red": (220, 40, 40),
        "green": (40, 180, 60),
        "blue": (40, 80, 230),
        "yellow": (240, 220, 40),
    }
    sizes: dict[str, float] = {"small": 0.32, "large": 0.52}  # object width as a fraction of the image
    positions: tuple[str, ...] = tuple(POSITION_PHRASES)
    counts: tuple[str, ...] = COUNT_WORDS  # "count" layout: how many objects a group may have, as words, 1 upwards
    count_object_size: float = 0.18  # "count" layout: every object's width as a fraction of the image
    backgrounds: dict[str, tuple[int, int, int]] = {
        "white": (245, 245, 245),
        "black": (15, 15, 15),
        "gray": (128, 128, 128),
        "purple": (120, 50, 150),
    }
    held_out_fraction: float = 0.1  # share of full attribute combinations kept out of training
    # Share of those held-out combinations given to the architecture search (Theta, surrogate targets, stage
    # validation); the rest are evaluate's alone, so nothing is selected on the combinations it is judged on.
    search_fraction: float = 1 / 3
    split_seed: int = 0
    # "single": one object (v1, the shipped teacher's world); "pair": two objects left and right (worlds v2-v5);
    # "quad": four objects, one per quadrant (world v6); "count": two counted groups at free places (world v7).
    # ``positions`` is used by "single" only, ``counts`` and ``count_object_size`` by "count" only.
    layout: Literal["single", "pair", "quad", "count"] = "single"

    @property
    def attributes(self) -> tuple[str, ...]:
        return {"single": ATTRIBUTES, "pair": PAIR_ATTRIBUTES, "quad": QUAD_ATTRIBUTES,
                "count": COUNT_ATTRIBUTES}[self.layout]

    @property
    def n_combinations(self) -> int:
        if self.layout == "count":  # the groups' colours are ordered: not every product is a composition
            return len(self.combinations())
        return math.prod(len(self.values(a)) for a in self.attributes)

    @model_validator(mode="after")
    def _check(self) -> WorldSpec:
        unknown = [p for p in self.positions if p not in POSITION_PHRASES]
        if unknown:
            raise ValueError(f"positions {unknown} are not drawable; choose from {list(POSITION_PHRASES)}")
        if self.image_size < 16:
            raise ValueError(f"image_size {self.image_size} is too small to draw shapes (>= 16)")
        if not 0 <= self.held_out_fraction < 1:
            raise ValueError(f"held_out_fraction {self.held_out_fraction} must be in [0, 1)")
        if not 0 <= self.search_fraction < 1:
            raise ValueError(f"world.search_fraction {self.search_fraction} must be in [0, 1)")
        words = [*self.shapes, *self.colours, *self.sizes, *self.backgrounds, *self.counts]
        if len(set(words)) != len(words):
            raise ValueError("shape, colour, size, background and count words must all differ (captions are "
                             "parsed back)")
        if self.layout == "count":
            unknown = [c for c in self.counts if c not in NUMBER_WORDS]
            if unknown or not self.counts:
                raise ValueError(f"world.counts {list(self.counts)}: each must be one of {list(NUMBER_WORDS)}")
            if len(self.colours) < 2:
                raise ValueError("world.colours: the count layout's two groups need two colours at least")
            if not 0.05 <= self.count_object_size <= 0.25:
                raise ValueError(f"world.count_object_size {self.count_object_size} must be in [0.05, 0.25] (two "
                                 "groups of the largest count must fit in the image without touching)")
        return self

    def count_of(self, word: str) -> int:
        """A count word as a number ("three" -> 3)."""
        return NUMBER_WORDS.index(word) + 1

    def values(self, attribute: str) -> list[str]:
        if self.layout != "single" and attribute in self.attributes and attribute != "background":
            attribute = attribute.rsplit("_", 1)[1]  # "top_left_colour" -> "colour"
        return list({"shape": self.shapes, "colour": self.colours, "size": self.sizes, "count": self.counts,
                     "position": self.positions, "background": self.backgrounds}[attribute])

    def combinations(self) -> list[tuple[str, ...]]:
        combos = itertools.product(*(self.values(a) for a in self.attributes))
        if self.layout == "count":  # the first group's colour comes first in the vocabulary (module comment)
            order = list(self.colours)
            first, second = self.attributes.index("first_colour"), self.attributes.index("second_colour")
            combos = (c for c in combos if order.index(c[first]) < order.index(c[second]))
        return list(combos)

    def split(self) -> dict[str, list[tuple[str, ...]]]:
        """Three disjoint sets of attribute combinations, fixed by ``split_seed``: ``train`` (the teacher's and
        the distillation's images), ``search`` (held out of training; the architecture search selects on them)
        and ``eval`` (held out of training and of the search; only evaluate and the teacher's competence check
        see them). Every single attribute value still occurs in training; only their combinations are new."""
        if self.layout in HASHED_LAYOUTS:
            raise ValueError(f"world.layout {self.layout!r} has {self.n_combinations:,} compositions, too many to "
                             "list; its split is by hash (split_of, draw_combination)")
        combos = self.combinations()
        rng = random.Random(self.split_seed)
        rng.shuffle(combos)
        n_held_out = int(round(len(combos) * self.held_out_fraction))
        # The search takes the tail of the held-out block, so training's combinations are the same for every
        # search_fraction (the shipped teacher's were drawn before the search had a split of its own).
        n_search = int(round(n_held_out * self.search_fraction))
        return {"eval": sorted(combos[: n_held_out - n_search]),
                "search": sorted(combos[n_held_out - n_search: n_held_out]),
                "train": sorted(combos[n_held_out:])}

    def split_of(self, combination: tuple[str, ...]) -> str:
        """A hashed layout's split of one composition: a seeded hash puts it in ``eval`` (the first
        ``held_out_fraction x (1 - search_fraction)`` of [0, 1)), ``search`` (the rest of the held-out share) or
        ``train``, so the three are disjoint by construction and the same for every run, without listing them."""
        digest = hashlib.sha256(f"{self.split_seed}|{'|'.join(combination)}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        eval_share = self.held_out_fraction * (1 - self.search_fraction)
        return "eval" if u < eval_share else "search" if u < self.held_out_fraction else "train"

    def split_share(self, split: str) -> float:
        """The expected share of all compositions that a hashed layout's ``split`` holds."""
        held, search = self.held_out_fraction, self.held_out_fraction * self.search_fraction
        return {"eval": held - search, "search": search, "train": 1 - held}[split]

    def draw_combination(self, split: str, rng: random.Random) -> tuple[str, ...]:
        """A hashed layout's composition from ``split``: every attribute drawn uniformly, redrawn until the
        composition is ``split``'s (for the train split about one draw in 1.1, for eval one in 15)."""
        if self.split_share(split) <= 0:
            raise ValueError(f"the world's {split!r} split is empty; raise world.held_out_fraction (or, for "
                             "'search', world.search_fraction)")
        vocabularies = [self.values(a) for a in self.attributes]
        while True:
            combination = tuple(rng.choice(v) for v in vocabularies)
            if self.split_of(combination) == split:
                return combination


@dataclass(frozen=True)
class Scene:
    """One image's attributes plus the jitter that makes images of the same combination differ."""

    shape: str
    colour: str
    size: str
    position: str
    background: str
    jitter: tuple[float, float] = (0.0, 0.0)  # offset as a fraction of the image
    scale: float = 1.0
    rotation: float = 0.0  # degrees, triangles and squares only
    extra: dict = field(default_factory=dict, compare=False)

    def attributes(self) -> dict[str, str]:
        return {a: getattr(self, a) for a in ATTRIBUTES}


@dataclass(frozen=True)
class PairScene:
    """A world-v2 image: two objects (left and right slot) and a background, with per-object jitter."""

    left_shape: str
    left_colour: str
    left_size: str
    right_shape: str
    right_colour: str
    right_size: str
    background: str
    jitter: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 0.0), (0.0, 0.0))  # per slot, image fractions
    scale: tuple[float, float] = (1.0, 1.0)
    rotation: tuple[float, float] = (0.0, 0.0)

    def attributes(self) -> dict[str, str]:
        return {a: getattr(self, a) for a in PAIR_ATTRIBUTES}


@dataclass(frozen=True)
class QuadScene:
    """A world-v6 image: four objects (one per quadrant) and a background; ``values`` maps each of
    ``QUAD_ATTRIBUTES`` to its value, the jitter, scale and rotation are per slot in ``QUAD_SLOTS`` order."""

    values: dict[str, str]
    jitter: tuple[tuple[float, float], ...] = ((0.0, 0.0),) * 4  # per slot, image fractions
    scale: tuple[float, ...] = (1.0,) * 4
    rotation: tuple[float, ...] = (0.0,) * 4

    def __post_init__(self) -> None:
        if set(self.values) != set(QUAD_ATTRIBUTES):
            raise ValueError(f"a quad scene names {sorted(QUAD_ATTRIBUTES)}, got {sorted(self.values)}")

    def attributes(self) -> dict[str, str]:
        return {a: self.values[a] for a in QUAD_ATTRIBUTES}


@dataclass(frozen=True)
class CountScene:
    """A world-v7 image: ``values`` maps each of ``COUNT_ATTRIBUTES`` to its value; ``centres`` holds one (x, y) per
    object as image fractions, the first group's first, with one scale and rotation each. A prompt's scene has no
    centres (it is only captioned)."""

    values: dict[str, str]
    centres: tuple[tuple[float, float], ...] = ()
    scale: tuple[float, ...] = ()
    rotation: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if set(self.values) != set(COUNT_ATTRIBUTES):
            raise ValueError(f"a count scene names {sorted(COUNT_ATTRIBUTES)}, got {sorted(self.values)}")
        if not len(self.centres) == len(self.scale) == len(self.rotation):
            raise ValueError("a count scene has one centre, scale and rotation per object")

    def attributes(self) -> dict[str, str]:
        return {a: self.values[a] for a in COUNT_ATTRIBUTES}
