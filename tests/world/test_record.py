"""The world a teacher learnt, kept beside it, and the check that refuses a run on another world (order counts)."""

import json

import pytest

from delta_diff.project_config import load_project_config
from delta_diff.world import WorldSpec
from delta_diff.world.record import RECORD_NAME, check_world_matches_teacher, first_difference, world_record

from tests.conftest import PROJECT_ROOT

# Every shipped teacher and the conf environment of its world (conf/local: the default world).
SHIPPED = {"embedded_teacher": "local", **{f"embedded_teacher_v{n}": f"world_v{n}" for n in range(2, 8)}}


def recorded_teacher(tmp_path, world: WorldSpec):
    (tmp_path / RECORD_NAME).write_text(json.dumps(world_record(world), indent=2))
    return tmp_path


def test_a_record_read_back_matches_its_world(tmp_path):
    world = WorldSpec(layout="count")
    assert check_world_matches_teacher(world, recorded_teacher(tmp_path, world)) is True


def test_the_same_colours_in_another_order_are_refused_naming_the_key(tmp_path):
    """The fault that made v7's first claim runs judge the teacher on compositions it trained on."""
    world = WorldSpec(layout="count")
    teacher = recorded_teacher(tmp_path, world)
    reordered = WorldSpec(layout="count", colours=dict(reversed(list(world.colours.items()))))
    with pytest.raises(ValueError, match=r"world.colours holds the same keys in another order: the teacher's "
                                         r"red, green, blue, yellow; this run's yellow, blue, green, red"):
        check_world_matches_teacher(reordered, teacher)
    with pytest.raises(ValueError, match=r"world.shapes holds the same values in another order"):
        check_world_matches_teacher(WorldSpec(layout="count", shapes=("square", "circle", "triangle")), teacher)


def test_another_value_or_vocabulary_is_named(tmp_path):
    teacher = recorded_teacher(tmp_path, WorldSpec(layout="count"))
    with pytest.raises(ValueError, match=r"world.count_object_size is 0.2 in this run but 0.18 in the teacher's"):
        check_world_matches_teacher(WorldSpec(layout="count", count_object_size=0.2), teacher)
    with pytest.raises(ValueError, match=r"world.layout is 'pair' in this run but 'count'"):
        check_world_matches_teacher(WorldSpec(layout="pair"), teacher)
    fewer = WorldSpec(layout="count", colours={"red": (220, 40, 40), "blue": (40, 80, 230)})
    with pytest.raises(ValueError, match=r"world.colours: this run's lacks green, yellow"):
        check_world_matches_teacher(fewer, teacher)


def test_a_field_added_after_the_record_counts_only_when_it_leaves_its_default(tmp_path):
    record = world_record(WorldSpec())
    del record["count_object_size"]  # as if the teacher had been recorded before that field existed
    (tmp_path / RECORD_NAME).write_text(json.dumps(record))
    assert check_world_matches_teacher(WorldSpec(), tmp_path) is True
    with pytest.raises(ValueError, match=r"world: this run's adds count_object_size"):
        check_world_matches_teacher(WorldSpec(count_object_size=0.3), tmp_path)


def test_a_teacher_without_a_record_is_not_checked_and_a_damaged_record_is_named(tmp_path):
    assert check_world_matches_teacher(WorldSpec(), tmp_path) is False  # an SD teacher has none
    (tmp_path / RECORD_NAME).write_text('{"image_size": 3')
    with pytest.raises(ValueError, match=rf"{RECORD_NAME}: Expecting .*re-run that"):
        check_world_matches_teacher(WorldSpec(), tmp_path)


def test_first_difference_walks_in_order_and_says_none_when_equal():
    assert first_difference({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2}]}) is None
    assert first_difference({"a": [1, {"b": 2}]}, {"a": [1, {"b": 3}]}) == \
        "world.a[1].b is 3 in this run but 2 in the teacher's world"
    assert "3 entries" in first_difference({"a": [1, 2, 3]}, {"a": [1, 2]})


@pytest.mark.parametrize("teacher, env", SHIPPED.items())
def test_every_shipped_teacher_records_its_environments_world_in_order(teacher, env):
    world = WorldSpec(**load_project_config(PROJECT_ROOT / "conf", "parameters", env)["world"])
    assert check_world_matches_teacher(world, PROJECT_ROOT / "data" / "06_models" / teacher) is True
    recorded = json.loads((PROJECT_ROOT / "data" / "06_models" / teacher / RECORD_NAME).read_text())
    assert list(recorded["colours"]) == list(world.colours)
