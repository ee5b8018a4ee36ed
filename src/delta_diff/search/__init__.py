"""Surrogate-assisted evolutionary search for each teacher-assistant architecture (Kedro-free)."""

from .candidates import all_feasible, check_budget, fill_to_budget, params_of, sample_candidates, smallest_genome
from .evolution import EvolutionConfig, SearchResult, evolve
from .proxies import ProxyEvaluator, ThetaSetup
from .surrogate import FEATURES, Surrogate, SurrogateConfig, fit_surrogate
from .stage import StageChoice, choose_architecture, describe_choice, setup_stamp, surrogate_table
from .surrogate_data import collect_surrogate_data

__all__ = [
    "FEATURES",
    "EvolutionConfig",
    "ProxyEvaluator",
    "SearchResult",
    "StageChoice",
    "Surrogate",
    "SurrogateConfig",
    "ThetaSetup",
    "all_feasible",
    "check_budget",
    "choose_architecture",
    "collect_surrogate_data",
    "describe_choice",
    "evolve",
    "fill_to_budget",
    "fit_surrogate",
    "params_of",
    "sample_candidates",
    "setup_stamp",
    "smallest_genome",
    "surrogate_table",
]
