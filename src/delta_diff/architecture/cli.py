"""``python -m delta_diff.architecture``: which blocks can I remove, what is left, and how many parameters?

Prints JSON; exit code 2 with a one-line message on bad input. Needs neither Kedro nor weights: parameters
are counted on the meta device from the config alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .presets import PRESETS, preset_genome
from .space import ArchitectureSpace
from .structure import ArchitectureError, load_unet_config
from .summary import genome_report


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print the whole usage first
        self.exit(2, f"error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="python -m delta_diff.architecture", description=__doc__.splitlines()[0])
    parser.add_argument("--unet-config", required=True, help="U-Net config.json, U-Net folder or pipeline folder")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--preset", choices=sorted(PRESETS), help="a BK-SDM preset of the given parent")
    choice.add_argument("--genome", help="bit string (one bit per unit, 1 = remove) or comma list of unit keys")
    parser.add_argument("--list-units", action="store_true", help="also list every removable unit")
    parser.add_argument("--output-config", help="write the pruned U-Net's config.json here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        space = ArchitectureSpace(load_unet_config(args.unet_config))
        if args.preset:
            genome = preset_genome(space, args.preset)
        elif args.genome is not None:
            genome = space.parse(args.genome)
        else:
            genome = space.empty()
        result = genome_report(space, genome, args.list_units)
        if args.output_config:
            target = Path(args.output_config)
            if target.is_dir():  # a bare "[Errno 21] Is a directory" named neither the option nor the fix
                raise ArchitectureError(f"--output-config {target} is a folder; give a file name, e.g. "
                                        f"{target / 'config.json'}")
            try:
                with open(target, "w") as handle:
                    json.dump(space.child_config(genome), handle, indent=2)
            except OSError as error:
                raise ArchitectureError(f"--output-config {target}: cannot write it ({error.strerror})") from None
    except (ArchitectureError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0
