"""How the world's captions are written from a scene and read back into the attributes they ask for.

The scorer judges an image against the attributes its prompt names, so every caption must parse back to exactly the
values it was written from (``tests/world`` checks this for every composition of the listed layouts).
"""

from __future__ import annotations

import re

from .spec import (
    COUNT_ATTRIBUTES,
    GROUPS,
    PAIR_ATTRIBUTES,
    POSITION_PHRASES,
    QUAD_ATTRIBUTES,
    QUAD_SLOTS,
    SLOTS,
    CountScene,
    PairScene,
    QuadScene,
    Scene,
    WorldSpec,
)

# One template, left object first: the world's text encoder has no transformer layers, so which object a word
# belongs to is carried by its token position alone; a fixed order keeps every word at a fixed position.
PAIR_TEMPLATES = (
    "a {left_size} {left_colour} {left_shape} on the left and a {right_size} {right_colour} {right_shape} "
    "on the right on a {background} background",
)

# World v6: one clause per quadrant, in reading order.
QUAD_TEMPLATES = (
    "a {top_left_size} {top_left_colour} {top_left_shape} at the top left, a {top_right_size} {top_right_colour} "
    "{top_right_shape} at the top right, a {bottom_left_size} {bottom_left_colour} {bottom_left_shape} at the "
    "bottom left and a {bottom_right_size} {bottom_right_colour} {bottom_right_shape} at the bottom right on a "
    "{background} background",
)

# World v7: the first group (colour earlier in the vocabulary) first.
COUNT_TEMPLATES = (
    "{first_count} {first_colour} {first_noun} and {second_count} {second_colour} {second_noun} on a {background} "
    "background",
)

# World v1 (one object): every template names all five attributes so captions stay parseable (the scorer reads prompts).
TEMPLATES = (
    "a {size} {colour} {shape} {position} on a {background} background",
    "a {size} {colour} {shape} on a {background} background, {position}",
    "{background} background with a {size} {colour} {shape} {position}",
)

TEMPLATES_OF_LAYOUT = {"single": TEMPLATES, "pair": PAIR_TEMPLATES, "quad": QUAD_TEMPLATES, "count": COUNT_TEMPLATES}


def caption(scene: Scene | PairScene | QuadScene | CountScene, template: int = 0) -> str:
    if isinstance(scene, CountScene):
        values = scene.attributes()
        for group in GROUPS:  # "one red circle", "three blue squares"
            values[f"{group}_noun"] = values[f"{group}_shape"] + ("" if values[f"{group}_count"] == "one" else "s")
        return COUNT_TEMPLATES[template % len(COUNT_TEMPLATES)].format(**values)
    if isinstance(scene, QuadScene):
        return QUAD_TEMPLATES[template % len(QUAD_TEMPLATES)].format(**scene.attributes())
    if isinstance(scene, PairScene):
        return PAIR_TEMPLATES[template % len(PAIR_TEMPLATES)].format(**scene.attributes())
    values = scene.attributes()
    values["position"] = POSITION_PHRASES[scene.position]
    return TEMPLATES[template % len(TEMPLATES)].format(**values)


def parse_caption(text: str, spec: WorldSpec) -> dict[str, str | None]:
    """Read the attributes a prompt asks for (None where it names none or several), whatever the template."""
    if spec.layout == "pair":
        return _parse_pair_caption(text, spec)
    if spec.layout == "quad":
        return _parse_quad_caption(text, spec)
    if spec.layout == "count":
        return _parse_count_caption(text, spec)
    words = re.findall(r"[a-z]+", text.lower())
    found: dict[str, str | None] = {}
    for attribute, vocabulary in (("shape", spec.shapes), ("colour", spec.colours), ("size", spec.sizes)):
        hits = {w for w in words if w in vocabulary}
        found[attribute] = hits.pop() if len(hits) == 1 else None
    backgrounds = re.findall(r"([a-z]+) background", text.lower())
    found["background"] = backgrounds[0] if len(backgrounds) == 1 and backgrounds[0] in spec.backgrounds else None
    positions = [p for p, phrase in POSITION_PHRASES.items() if phrase in text.lower() and p in spec.positions]
    found["position"] = positions[0] if len(positions) == 1 else None
    return found


def _parse_pair_caption(text: str, spec: WorldSpec) -> dict[str, str | None]:
    """World v2: each clause "... on the left" / "... on the right" names one object's attributes."""
    lowered = text.lower()
    found: dict[str, str | None] = {a: None for a in PAIR_ATTRIBUTES}
    for clause in re.split(r"\band\b|,", lowered):
        sides = [slot for slot in SLOTS if re.search(rf"\bon the {slot}\b", clause)]
        if len(sides) != 1:
            continue
        words = re.findall(r"[a-z]+", clause.split(f"on the {sides[0]}")[0])
        for attribute, vocabulary in (("shape", spec.shapes), ("colour", spec.colours), ("size", spec.sizes)):
            hits = {w for w in words if w in vocabulary}
            found[f"{sides[0]}_{attribute}"] = hits.pop() if len(hits) == 1 else None
    backgrounds = re.findall(r"([a-z]+) background", lowered)
    found["background"] = backgrounds[0] if len(backgrounds) == 1 and backgrounds[0] in spec.backgrounds else None
    return found


def _parse_quad_caption(text: str, spec: WorldSpec) -> dict[str, str | None]:
    """World v6: each clause "... at the top left" (etc.) names one object's attributes."""
    lowered = text.lower()
    found: dict[str, str | None] = {a: None for a in QUAD_ATTRIBUTES}
    for clause in re.split(r"\band\b|,", lowered):
        slots = [slot for slot in QUAD_SLOTS if re.search(rf"\bat the {slot.replace('_', ' ')}\b", clause)]
        if len(slots) != 1:
            continue
        words = re.findall(r"[a-z]+", clause.split(f"at the {slots[0].replace('_', ' ')}")[0])
        for attribute, vocabulary in (("shape", spec.shapes), ("colour", spec.colours), ("size", spec.sizes)):
            hits = {w for w in words if w in vocabulary}
            found[f"{slots[0]}_{attribute}"] = hits.pop() if len(hits) == 1 else None
    backgrounds = re.findall(r"([a-z]+) background", lowered)
    found["background"] = backgrounds[0] if len(backgrounds) == 1 and backgrounds[0] in spec.backgrounds else None
    return found


def _parse_count_caption(text: str, spec: WorldSpec) -> dict[str, str | None]:
    """World v7: "<count> <colour> <shape>(s) and <count> <colour> <shape>(s) on a <background> background"; the
    clauses in caption order are the first and second group."""
    lowered = text.lower()
    found: dict[str, str | None] = {a: None for a in COUNT_ATTRIBUTES}
    body = re.split(r"\bon an? [a-z]+ background\b", lowered)[0]
    clauses = [c for c in re.split(r"\band\b|,", body) if c.strip()]
    if len(clauses) == len(GROUPS):
        for group, clause in zip(GROUPS, clauses):
            words = re.findall(r"[a-z]+", clause)
            singular = [w[:-1] if w.endswith("s") and w[:-1] in spec.shapes else w for w in words]
            for attribute, vocabulary, pool in (("count", spec.counts, words), ("colour", spec.colours, words),
                                                ("shape", spec.shapes, singular)):
                hits = {w for w in pool if w in vocabulary}
                found[f"{group}_{attribute}"] = hits.pop() if len(hits) == 1 else None
    backgrounds = re.findall(r"([a-z]+) background", lowered)
    found["background"] = backgrounds[0] if len(backgrounds) == 1 and backgrounds[0] in spec.backgrounds else None
    return found
