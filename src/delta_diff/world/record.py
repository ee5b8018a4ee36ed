"""The world a teacher was trained on, kept in its pipeline folder (``world.json``), and the check that a run's
world is that one.

A world's vocabulary order is meaning, not presentation: it decides which compositions are held out from the
teacher's training (the split shuffles the list of compositions) and, in world v7, which group of objects comes
first. A run whose ``params:world`` lists the same colours in another order judges the teacher on compositions it
trained on, with nothing looking wrong (issue 15: v7's first claim runs had the teacher at 0.887 instead of 0.976).
So the comparison keeps order, and a difference is refused before any node runs, naming the key.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from delta_diff.world.spec import WorldSpec

logger = logging.getLogger(__name__)

RECORD_NAME = "world.json"


def world_record(world: WorldSpec) -> dict[str, Any]:
    """The world as JSON, in its own order (written beside the teacher by the ``teacher`` pipeline)."""
    return world.model_dump(mode="json")


def first_difference(recorded: Any, current: Any, key: str = "world") -> str | None:
    """The first place where ``current`` differs from ``recorded``, dict key order and list order included, in
    words (``None`` when equal)."""
    if isinstance(recorded, dict) and isinstance(current, dict):
        if list(recorded) != list(current):
            if set(recorded) == set(current):
                return (f"{key} holds the same keys in another order: the teacher's {', '.join(recorded)}; this "
                        f"run's {', '.join(current)}")
            missing, extra = [k for k in recorded if k not in current], [k for k in current if k not in recorded]
            parts = ([f"lacks {', '.join(missing)}"] if missing else []) + ([f"adds {', '.join(extra)}"] if extra else [])
            return f"{key}: this run's {' and '.join(parts)} (the teacher's: {', '.join(recorded)})"
        for name in recorded:
            difference = first_difference(recorded[name], current[name], f"{key}.{name}")
            if difference:
                return difference
        return None
    if isinstance(recorded, list) and isinstance(current, list):
        if recorded != current and sorted(map(json.dumps, recorded)) == sorted(map(json.dumps, current)):
            return f"{key} holds the same values in another order: the teacher's {recorded}; this run's {current}"
        if len(recorded) != len(current):
            return f"{key}: the teacher's has {len(recorded)} entries {recorded}; this run's {len(current)} {current}"
        for index, (old, new) in enumerate(zip(recorded, current)):
            difference = first_difference(old, new, f"{key}[{index}]")
            if difference:
                return difference
        return None
    if recorded != current:
        return f"{key} is {current!r} in this run but {recorded!r} in the teacher's world"
    return None


def check_world_matches_teacher(world: WorldSpec, teacher_folder: str | Path) -> bool:
    """Raise a ``ValueError`` naming the first differing key when the teacher folder records another world than
    ``world``; return whether a record was there to compare (an SD teacher, or one saved before records, has none)."""
    record = Path(teacher_folder) / RECORD_NAME
    if not record.is_file():
        logger.info("the teacher %s records no world (%s): the run's world is not checked against it",
                    teacher_folder, RECORD_NAME)
        return False
    try:
        recorded = json.loads(record.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{record}: {error}; it should hold the world the teacher was trained on, as written by "
                         "`kedro run --pipelines teacher --nodes record_teacher_world` (re-run that)") from None
    current, defaults = world_record(world), world_record(WorldSpec())
    # A field added to WorldSpec after the teacher was recorded, at its default, changes nothing the teacher saw
    # (new fields come with defaults that keep the older worlds as they were).
    current = {k: v for k, v in current.items() if k in recorded or v != defaults.get(k)}
    difference = first_difference(recorded, current)
    if difference:
        raise ValueError(
            f"params:world differs from the world the teacher {teacher_folder} was trained on ({record}): "
            f"{difference}. Order matters (it decides which compositions the teacher never saw and which group "
            "comes first), so the run would judge it on other prompts than its held-out ones. Run in the teacher's "
            "world environment (kedro run --env world_vN), copy its world block unchanged, or train a teacher for "
            "this world (kedro run --pipelines teacher)")
    return True
