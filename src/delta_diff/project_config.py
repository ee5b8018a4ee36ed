"""A Kedro project's configuration outside a session, loaded as ``kedro run --env <env>`` loads it: the project's
settings (resolvers such as ``mul``, the soft parameter merge) and the environment's globals. For the experiment
runner, benchmarks and tests, which need a parameter or a catalog path without starting a run."""

from pathlib import Path


def load_project_config(conf: str | Path, key: str, env: str | None = None) -> dict:
    """``key`` ("parameters", "catalog", ...) of the conf folder ``conf``: ``env`` merged over base (base alone for
    None). The project's own resolvers are always passed: OmegaConf keeps resolvers process-wide, so a loader
    built with a stand-in would leak it into every later loader of the process."""
    from kedro.config import OmegaConfigLoader

    from delta_diff.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(str(conf), base_env="base", default_run_env=env or "base",
                               custom_resolvers=CONFIG_LOADER_ARGS["custom_resolvers"],
                               merge_strategy=CONFIG_LOADER_ARGS["merge_strategy"])
    return loader[key]
