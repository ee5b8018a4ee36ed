"""One search stage through a real KedroSession on the shipped teacher, with a micro configuration."""

import json

import pytest
from diffusers import UNet2DConditionModel
from kedro.framework.session import KedroSession

from delta_diff.architecture import ArchitectureSpace, count_params

from tests.conftest import MICRO as SHARED_MICRO
from tests.conftest import latest

# The shared micro data and proxies, with this file's own search loop (more generations, fewer surrogate rows).
MICRO = {
    "data_prep": SHARED_MICRO["data_prep"],
    "architecture_search": {"search": {
        **SHARED_MICRO["architecture_search"]["search"],
        "surrogate": {"min_rows": 6, "n_estimators": 20},
        "evolution": {"population": 6, "max_generations": 3, "patience": 2},
    }},
}


@pytest.mark.slow
def test_search_stage_chooses_a_pruned_candidate_within_budget(kedro_project):
    with KedroSession.create(project_path=kedro_project, runtime_params=MICRO) as session:
        session.run(pipeline_names=["data_prep", "architecture_search"])
    stage = kedro_project / "data"
    chosen = json.loads(latest(stage / "07_model_output" / "stage_1" / "chosen_architecture.json").read_text())
    assert chosen["params"] <= chosen["budget"] == int(0.75 * chosen["parent_params"])
    assert chosen["removed"] and chosen["real_proxy_evaluations"] >= 6
    table = latest(stage / "07_model_output" / "stage_1" / "surrogate_training_data.csv").read_text()
    assert table.splitlines()[0].count("distilled_score") == 1 and len(table.splitlines()) == 7
    unet = UNet2DConditionModel.from_pretrained(latest(stage / "06_models" / "stage_1" / "candidate_unet"))
    assert count_params(dict(unet.config)) == chosen["params"]
    assert ArchitectureSpace(dict(unet.config))  # a genuine SD-family U-Net, searchable again
    for figure in ("surrogate_fit.png", "search_convergence.png", "search_population.png"):
        assert latest(stage / "08_reporting" / "stage_1" / figure).stat().st_size > 0


def test_an_impossible_budget_fails_before_any_distillation(kedro_project):
    params = {**MICRO, "architecture_search": {"search": {"budget": {"fraction_of_parent": 0.01}}}}
    with KedroSession.create(project_path=kedro_project, runtime_params=params) as session:
        with pytest.raises(Exception, match="below the smallest sub-architecture"):
            session.run(pipeline_names=["data_prep", "architecture_search"])
    assert not (kedro_project / "data" / "07_model_output").exists()
