"""A stage whose nested space holds fewer architectures than it would distil anyway measures them all."""

import json

from kedro.framework.session import KedroSession

from tests.conftest import MICRO, latest, write_two_stage_path


def test_small_nested_space_is_searched_exhaustively(kedro_project):
    write_two_stage_path(kedro_project)
    params = {**MICRO, "architecture_search": {"search": {**MICRO["architecture_search"]["search"],
                                                         "surrogate_data": {"n_candidates": 40,
                                                                            "distillation": {"steps": 1, "batch_size": 8}}}}}
    with KedroSession.create(project_path=kedro_project, runtime_params=params) as session:
        session.run(pipeline_names=["__default__"], node_names=None,
                    to_nodes=["stage_1.search_architecture"])
    data = kedro_project / "data"
    report = json.loads(latest(data / "08_reporting" / "stage_1" / "surrogate_report.json").read_text())
    chosen = json.loads(latest(data / "07_model_output" / "stage_1" / "chosen_architecture.json").read_text())
    table = latest(data / "07_model_output" / "stage_1" / "surrogate_training_data.csv").read_text().splitlines()
    assert report["exhaustive"] is True and len(table) - 1 == report["rows"] < 40
    assert chosen["params"] <= chosen["budget"]
