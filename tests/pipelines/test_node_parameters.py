"""Every node input from ``params:`` has a type hint: Kedro validates a parameter into its model only from the
node function's own hints, so an untyped one arrives as a raw dict when no other node of the run asks for the
model (found by a new user: `kedro run --pipelines evaluate` alone handed evaluate the world as a dict)."""

import inspect
import typing

from kedro.framework.startup import bootstrap_project

from tests.conftest import PROJECT_ROOT


def test_every_parameter_input_of_every_registered_node_is_typed():
    bootstrap_project(PROJECT_ROOT)
    from delta_diff.pipeline_registry import register_pipelines

    untyped, checked = [], set()
    for name, pipeline in register_pipelines().items():
        for node in pipeline.nodes:
            if node.name in checked:
                continue
            checked.add(node.name)
            hints = typing.get_type_hints(node.func)
            for given, parameter in zip(node.inputs, inspect.signature(node.func).parameters):
                if given.startswith("params:") or ".params:" in given:
                    if parameter not in hints:
                        untyped.append(f"{name}: {node.name} ({given} -> {parameter})")
    assert len(checked) > 30 and untyped == []
