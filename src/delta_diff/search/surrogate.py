"""The surrogate: XGBoost regression from a candidate's cheap proxies (and size) to its score after a short real
distillation, with an honest cross-validated report (Kendall tau, Spearman rho, RMSE) and the same rank
correlations for Phi alone, so a surrogate no better than its best single proxy is seen as such."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import xgboost as xgb
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import kendalltau, spearmanr

from delta_diff.config_types import Count, LearningRate

FEATURES = ("phi", "theta", "eps_mse", "param_fraction")
TARGET = "distilled_score"
# The direction each feature can only move the score in, all else equal: more similar attention (Phi), better
# images (Theta), a closer noise prediction (lower eps-MSE) and more parameters never make a candidate worse.
# On ~10 rows an unconstrained model fits noise instead (benchmarks/surrogate_fidelity.py, README).
MONOTONE = {"phi": 1, "theta": 1, "eps_mse": -1, "param_fraction": 1}


class SurrogateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    features: list[Literal[FEATURES]] = Field(list(FEATURES), min_length=1)
    n_estimators: Count = 200
    max_depth: Count = 2
    learning_rate: LearningRate = 0.05
    min_rows: Annotated[int, Field(ge=3)] = 6  # fewer cannot be cross-validated
    folds: Annotated[int, Field(ge=2)] = 5
    seed: int = 0
    monotone: bool = True  # constrain the trees to MONOTONE's directions


@dataclass
class Surrogate:
    model: xgb.XGBRegressor
    features: list[str]

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        return self.model.predict(table[self.features].to_numpy(dtype=np.float32))


def _fit(table: pd.DataFrame, config: SurrogateConfig) -> xgb.XGBRegressor:
    constraints = "(" + ",".join(str(MONOTONE[f] if config.monotone else 0) for f in config.features) + ")"
    model = xgb.XGBRegressor(n_estimators=config.n_estimators, max_depth=config.max_depth,
                             learning_rate=config.learning_rate, subsample=1.0, random_state=config.seed,
                             n_jobs=1, tree_method="hist", monotone_constraints=constraints)
    model.fit(table[config.features].to_numpy(dtype=np.float32), table[TARGET].to_numpy(dtype=np.float32))
    return model


def _rank_quality(measured: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    tau = kendalltau(measured, predicted).statistic
    rho = spearmanr(measured, predicted).statistic
    return {"kendall_tau": float(np.nan_to_num(tau)), "spearman_rho": float(np.nan_to_num(rho)),
            "rmse": float(np.sqrt(np.mean((measured - predicted) ** 2)))}


def check_table(table: pd.DataFrame, config: SurrogateConfig) -> None:
    missing = [c for c in [*config.features, TARGET] if c not in table.columns]
    if missing:
        raise ValueError(f"surrogate training data lacks columns {missing}")
    if len(table) < config.min_rows:
        raise ValueError(
            f"surrogate training data has {len(table)} rows; at least {config.min_rows} are needed to fit and "
            "cross-validate (raise architecture_search surrogate_data.n_candidates)"
        )


def fit_surrogate(table: pd.DataFrame, config: SurrogateConfig) -> tuple[Surrogate, dict, pd.DataFrame]:
    """Fit on all rows; report k-fold (leave-one-out when rows < 2 * folds) out-of-fold quality."""
    check_table(table, config)
    n = len(table)
    folds = n if n < 2 * config.folds else config.folds
    order = np.random.default_rng(config.seed).permutation(n)
    predicted = np.zeros(n)
    for k in range(folds):
        held = order[k::folds]
        train = np.setdiff1d(order, held)
        predicted[held] = _fit(table.iloc[train], config).predict(
            table.iloc[held][config.features].to_numpy(dtype=np.float32))
    measured = table[TARGET].to_numpy(dtype=float)
    report = {"rows": n, "folds": folds, "surrogate": _rank_quality(measured, predicted)}
    for proxy in ("phi", "theta"):
        if proxy in table:
            report[f"{proxy}_alone"] = {k: v for k, v in _rank_quality(measured, table[proxy].to_numpy(float)).items()
                                        if k != "rmse"}
    best_single = max(report.get("phi_alone", {}).get("kendall_tau", -1), report.get("theta_alone", {}).get("kendall_tau", -1))
    report["better_than_best_single_proxy"] = bool(report["surrogate"]["kendall_tau"] > best_single)
    out_of_fold = table.assign(predicted=predicted)
    return Surrogate(_fit(table, config), list(config.features)), report, out_of_fold
