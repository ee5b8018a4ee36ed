"""``architecture_search``: for now, the parent's architecture space and the BK-SDM presets in it."""

from kedro.pipeline import Node, Pipeline

from .nodes import report_architecture_space


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                report_architecture_space,
                inputs=["parent_unet_config", "params:architecture_search.space_report"],
                outputs="architecture_space_report",
                name="report_architecture_space",
            )
        ]
    )
