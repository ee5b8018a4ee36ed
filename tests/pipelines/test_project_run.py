"""The project as users run it: the registry and a real ``KedroSession`` run in a copy of the project."""

import json
import shutil
from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests.conftest import PROJECT_ROOT


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A throw-away copy of the project's config and shipped inputs, so runs never touch the work tree."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    (root / "src").mkdir()  # the package itself is imported from the installed project
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / "data" / "01_raw").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "data" / "01_raw" / "sd_v1_4_unet_config.json", root / "data" / "01_raw")
    monkeypatch.chdir(root)
    bootstrap_project(root)
    return root


def test_registry_names_pipelines_with_nodes(project):
    from delta_diff.pipeline_registry import register_pipelines

    pipelines = register_pipelines()
    assert "architecture_search" in pipelines
    assert pipelines["__default__"].nodes
    assert all(p.nodes for p in pipelines.values())


def test_kedro_run_reports_the_architecture_space(project):
    with KedroSession.create(project_path=project) as session:
        session.run()
    versions = list((project / "data" / "08_reporting" / "architecture_space_report.json").iterdir())
    assert len(versions) == 1
    report = json.loads((versions[0] / "architecture_space_report.json").read_text())
    assert report["presets"]["bk-sdm-small"]["params"] == 482_346_884
    assert report["space_size"] == 512_000
    assert (project / "mlflow.db").is_file()


def test_bad_parameter_fails_before_any_node_runs(project):
    with KedroSession.create(
        project_path=project, runtime_params={"architecture_search": {"space_report": {"presets": ["bk-sdm-huge"]}}}
    ) as session:
        with pytest.raises(Exception, match="bk-sdm-huge"):
            session.run()
    assert not (project / "data" / "08_reporting").exists()
