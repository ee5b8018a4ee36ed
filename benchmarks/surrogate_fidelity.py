"""Does the surrogate rank candidates it never trained on? (issue 15, must 4)

For one search stage (the teacher's whole space, the budget of ``architecture_search.search.budget``), with the
run's own inputs and search settings from the Kedro catalog (``--env``; `data_prep` must have run there):

1. samples the search's ``surrogate_data.n_candidates`` training candidates plus ``--held-out`` others with the
   search's own sampler (one draw, so the two sets never share an architecture);
2. measures every one as the search does: the proxies (Phi, Theta, eps-MSE, size) and the score after the
   search's short distillation (the surrogate's target), through the pipeline's own ``prepare_search`` and
   short-distillation functions;
3. fits the surrogate on the training candidates only and reports, on the held-out ones, Kendall tau and
   Spearman rho between the real post-distillation score and each predictor: the surrogate (as configured, and
   with its monotone constraints toggled: ``surrogate_other``), Phi alone, Theta alone, eps-MSE alone, parameter
   count alone; writes a JSON report and a scatter figure.

    KEDRO_DISABLE_TELEMETRY=1 nice -n 10 .venv/bin/python benchmarks/surrogate_fidelity.py [--env world_v2] \
        [--held-out 12] --out data/08_reporting/surrogate_fidelity.json
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
PREDICTORS = ("surrogate", "surrogate_other", "phi", "theta", "eps_mse", "param_fraction")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None)
    parser.add_argument("--held-out", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7, help="the candidate sampler's seed")
    parser.add_argument("--out", type=Path, default=PROJECT / "data/08_reporting/surrogate_fidelity.json")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from scipy.stats import kendalltau, spearmanr

    from delta_diff.pipelines.architecture_search.search_nodes import _short_distil
    from delta_diff.sd import training_noise_scheduler
    from delta_diff.search.candidates import sample_candidates
    from delta_diff.search.surrogate import fit_surrogate
    from delta_diff.search.surrogate_data import collect_surrogate_data

    from search_stage import search_stage  # benchmarks/search_stage.py, beside this script

    stage = search_stage(args.env)
    teacher, cache, search, policy, context = (stage[k] for k in ("teacher", "cache", "search", "policy", "context"))
    evaluator, space, budget = context["evaluator"], context["space"], context["budget"]
    n_train = search.surrogate_data.n_candidates
    candidates = sample_candidates(space, budget, n_train + args.held_out, args.seed)
    if len(candidates) < n_train + args.held_out:
        raise SystemExit(f"only {len(candidates)} distinct architectures fit {budget:,} params; lower --held-out")
    distil = partial(_short_distil, cache=cache, config=search.surrogate_data.distillation,
                     noise_scheduler=training_noise_scheduler(teacher), policy=policy, text_encoder=teacher.text_encoder)
    began = time.perf_counter()
    table = collect_surrogate_data(evaluator, candidates, distil)
    seconds = time.perf_counter() - began
    train, held = table.iloc[:n_train], table.iloc[n_train:].copy()
    surrogate, cross_validated, _ = fit_surrogate(train, search.surrogate)
    held["surrogate"] = surrogate.predict(held)
    # the same surrogate with the monotone constraints toggled, fitted on the same rows
    other = search.surrogate.model_copy(update={"monotone": not search.surrogate.monotone})
    held["surrogate_other"] = fit_surrogate(train, other)[0].predict(held)
    real = held["distilled_score"].to_numpy(float)
    quality = {}
    for name in PREDICTORS:
        # eps-MSE is an error: lower is better, so its ranking is negated to read like the others
        predicted = -held[name].to_numpy(float) if name == "eps_mse" else held[name].to_numpy(float)
        quality[name] = {"kendall_tau": float(np.nan_to_num(kendalltau(real, predicted).statistic)),
                         "spearman_rho": float(np.nan_to_num(spearmanr(real, predicted).statistic))}
    best_single = max((q["kendall_tau"], n) for n, q in quality.items() if not n.startswith("surrogate"))
    report = {"env": args.env or "base", "budget_params": budget, "train_candidates": n_train,
              "held_out_candidates": len(held), "short_distillation": search.surrogate_data.distillation.model_dump(),
              "surrogate_features": search.surrogate.features, "surrogate_monotone": search.surrogate.monotone,
              "surrogate_other": f"monotone={other.monotone}", "wall_seconds": round(seconds, 1),
              "held_out": quality, "cross_validated_on_training_rows": cross_validated,
              "best_single_predictor": {"name": best_single[1], "kendall_tau": best_single[0]},
              "surrogate_beats_best_single": quality["surrogate"]["kendall_tau"] > best_single[0],
              "real_score_spread": float(real.max() - real.min()),
              "rows": table.assign(split=["train"] * n_train + ["held_out"] * len(held)).to_dict(orient="records")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=float))
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, name in zip(axes, ("surrogate", "phi", "theta")):
        ax.scatter(held[name], real, color="tab:blue")
        ax.set_xlabel(f"{name}" + (" (estimate)" if name == "surrogate" else ""))
        ax.set_title(f"{name}: Kendall {quality[name]['kendall_tau']:+.2f}", fontsize=9)
    axes[0].set_ylabel("real score after the short distillation")
    figure.suptitle(f"{len(held)} held-out candidates, surrogate fitted on {n_train} others", fontsize=9)
    figure.tight_layout()
    figure.savefig(args.out.with_suffix(".png"), dpi=110)
    print(f"{len(held)} held-out candidates under {budget:,} params; {len(table)} measured in {seconds:.0f} s")
    print(f"{'predictor':>15} {'Kendall tau':>11} {'Spearman rho':>12}")
    for name, q in quality.items():
        print(f"{name:>15} {q['kendall_tau']:>11.2f} {q['spearman_rho']:>12.2f}")
    print(f"surrogate beats the best single predictor ({best_single[1]}, {best_single[0]:.2f}): "
          f"{report['surrogate_beats_best_single']}; real score spread {report['real_score_spread']:.3f}")


if __name__ == "__main__":
    main()
