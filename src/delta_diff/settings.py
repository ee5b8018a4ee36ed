"""Project settings. There is no need to edit this file unless you want to change values
from the Kedro defaults. For further information, including these default values, see
https://docs.kedro.org/en/stable/configure/configuration_basics/#configuration"""

# Instantiated project hooks (executed in Last-In-First-Out order).
from delta_diff.hooks import (  # noqa: E402
    MlflowRunRecord,
    NodeProfile,
    ParameterCheck,
    PathShapeCheck,
    RunEnvironment,
    RunInputsCheck,
)

# ParameterCheck last, so that it is the first before_pipeline_run to look (pluggy calls the latest first): a bad
# parameter is named before any other check reads it.
HOOKS = (RunEnvironment(), PathShapeCheck(), RunInputsCheck(), MlflowRunRecord(), NodeProfile(), ParameterCheck())

# Installed plugins for which to disable hook auto-registration.
# DISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz",)

# Class that manages the KedroSession.
# from kedro.framework.session import KedroSession
# SESSION_CLASS = KedroSession

# Class that manages storing KedroSession data.
# from kedro.framework.session.store import BaseSessionStore
# SESSION_STORE_CLASS = BaseSessionStore
# Keyword arguments to pass to the `SESSION_STORE_CLASS` constructor.
# SESSION_STORE_ARGS = {
#     "path": "./sessions"
# }

# Directory that holds configuration.
# CONF_SOURCE = "conf"

# Class that manages how configuration is loaded.
# from kedro.config import OmegaConfigLoader

# CONFIG_LOADER_CLASS = OmegaConfigLoader

# Keyword arguments to pass to the `CONFIG_LOADER_CLASS` constructor.
def _multiply(*factors) -> int:
    product = 1
    for factor in factors:
        product *= int(factor)
    return product


CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # ${mul:a,b}: derived parameters (the baseline's steps = the path's total), never typed twice
    "custom_resolvers": {"mul": _multiply},
    # Deep-merge parameters of the run environment over base. Kedro's default ("destructive") replaces whole
    # top-level keys, and it merges --params into the environment's config first: with any conf/local
    # parameters file, `--params data_prep.training_images.n_images=64` would wipe the rest of data_prep.
    "merge_strategy": {"parameters": "soft"},
    # "config_patterns": {
    #     "spark" : ["spark*/"],
    #     "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
    # }
}

# Class that manages Kedro's library components.
# from kedro.framework.context import KedroContext
# CONTEXT_CLASS = KedroContext

# Class that manages the Data Catalog.
# from kedro.io import DataCatalog
# DATA_CATALOG_CLASS = DataCatalog
