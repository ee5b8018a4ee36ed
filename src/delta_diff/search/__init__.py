"""Surrogate-assisted evolutionary search for each teacher-assistant architecture (Kedro-free)."""

from .candidates import all_feasible, check_budget, fill_to_budget, params_of, sample_candidates, smallest_genome
from .evolution import EvolutionConfig, SearchResult, evolve
from .proxies import ProxyEvaluator, ThetaSetup
from .surrogate import FEATURES, Surrogate, SurrogateConfig, fit_surrogate
from .surrogate_data import collect_surrogate_data

__all__ = [
    "FEATURES",
    "EvolutionConfig",
    "ProxyEvaluator",
    "SearchResult",
    "Surrogate",
    "SurrogateConfig",
    "ThetaSetup",
    "all_feasible",
    "check_budget",
    "collect_surrogate_data",
    "evolve",
    "fill_to_budget",
    "fit_surrogate",
    "params_of",
    "sample_candidates",
    "smallest_genome",
]
