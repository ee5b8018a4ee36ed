"""``python -m delta_diff.sd_shaped``: write an SD v1.4- or SD 2.1-base-shaped pipeline with random weights.

Prints one line per step and, last, the pipeline folder; exit code 2 with a one-line message on bad input.
Needs neither Kedro nor network: configs ship in the package, the tokenizer is converted from hpsv2x's BPE file.
"""

from __future__ import annotations

import argparse
import sys

from .build import build_sd_shaped
from .configs import PREDICTION_TYPES, VARIANTS
from .errors import SdShapedError
from .hps import DEFAULT_HPS_MODEL, check_hps_target, write_random_hps_checkpoint


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print the whole usage first
        self.exit(2, f"error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="python -m delta_diff.sd_shaped", description=__doc__.splitlines()[0])
    parser.add_argument("--variant", required=True, choices=VARIANTS, help="which SD's shapes")
    parser.add_argument("--width-scale", type=float, default=1.0,
                        help="0 < F <= 1: U-Net and VAE channels times F (rounded to divide into norm groups and "
                             "heads), fewer text layers; 1 (default) is full size, 0.125 is seconds on a CPU")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    parser.add_argument("--prediction-type", choices=PREDICTION_TYPES,
                        help="the scheduler's prediction type (default epsilon, as both SD v1.4 and 2.1-base)")
    parser.add_argument("--hps-checkpoint", help="also write a random HPS v2 checkpoint (open_clip state dict) here")
    parser.add_argument("--hps-model", help=f"open_clip architecture of that checkpoint (default {DEFAULT_HPS_MODEL})")
    parser.add_argument("--out", required=True, help="pipeline folder to write (reused when already built alike)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.hps_model is not None and args.hps_checkpoint is None:
        parser.error("--hps-model needs --hps-checkpoint")
    model_name = args.hps_model or DEFAULT_HPS_MODEL
    try:
        if args.hps_checkpoint is not None:  # a bad HPS argument fails now, not after a full-size build
            check_hps_target(args.hps_checkpoint, model_name)
        out = build_sd_shaped(args.variant, args.out, width_scale=args.width_scale, seed=args.seed,
                              prediction_type=args.prediction_type, report=lambda line: print(line, flush=True))
        if args.hps_checkpoint is not None:
            print(f"writing a random HPS v2 checkpoint ({model_name}) to {args.hps_checkpoint}", flush=True)
            write_random_hps_checkpoint(args.hps_checkpoint, model_name, seed=args.seed)
    except (SdShapedError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(out)
    return 0
