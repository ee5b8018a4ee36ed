"""The inputs of ``kedro run --env sd_smoke``, built offline into one folder (conf/sd_smoke/README.md):

* ``pipeline/``: the reduced-width SD v1.4-shaped pipeline (width scale 0.125: SD v1.4's blocks, the real CLIP
  tokenizer, 77 tokens, 768-d text, seeded random weights);
* ``hps_random.pt``: a random open_clip model in HPS v2's checkpoint format (a stand-in for ViT-H-14 that goes
  through the real scorer's loading path);
* ``images/`` + ``metadata.csv``: a small image folder in BK-SDM's format (the embedded world's scenes rendered
  at 64 px stand in for LAION pairs);
* ``eval_prompts.json``, ``search_prompts.json`` and ``hps_benchmark/<style>.json``: evaluate's prompts, the
  search's own (disjoint) prompts and the four HPS v2 styles.

Each part is skipped when it is already there, so a second call returns at once.

    python -m delta_diff.sd_shaped.smoke data/01_raw/sd_smoke
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SMOKE_WIDTH_SCALE = 0.125
SMOKE_HPS_MODEL = "ViT-S-32-alt"  # conf/sd_smoke names the same
IMAGE_SIZE = 64
EVAL_PROMPTS = ["a photograph of an astronaut riding a horse", "a red bicycle leaning against a brick wall",
                "a bowl of ramen on a wooden table, studio lighting", "a lighthouse on a cliff at sunset"]
SEARCH_PROMPTS = ["a red fox in a snowy forest", "a steam train crossing a stone bridge",
                  "a plate of sushi on a black table", "a windmill in a field of tulips"]
HPS_STYLES = {  # two prompts per benchmark style, in the benchmark's own file names
    "anime": ["a girl with blue hair in a school uniform, anime style", "a giant robot over a neon city, anime"],
    "concept-art": ["a floating castle above the clouds, concept art", "an alien desert with two moons, concept art"],
    "paintings": ["a vase of sunflowers, oil painting", "a stormy sea with a small boat, watercolour painting"],
    "photo": ["a golden retriever puppy in the snow", "a cup of coffee next to a laptop"],
}


def build_smoke_inputs(out: str | Path, n_images: int = 24, report=print) -> Path:
    from delta_diff.data import write_image_folder
    from delta_diff.world import WorldSpec, make_world_images

    from .build import build_sd_shaped
    from .hps import write_random_hps_checkpoint

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    build_sd_shaped("sd-v1-4", out / "pipeline", width_scale=SMOKE_WIDTH_SCALE, seed=0, report=report)
    if not (out / "hps_random.pt").is_file():
        write_random_hps_checkpoint(out / "hps_random.pt", SMOKE_HPS_MODEL, seed=0)
        report(f"wrote a random {SMOKE_HPS_MODEL} HPS-format checkpoint to {out / 'hps_random.pt'}")
    if not (out / "images" / "metadata.csv").is_file():
        images, metadata = make_world_images(WorldSpec(image_size=IMAGE_SIZE), "train", n_images, seed=1)
        write_image_folder(out / "images", images, metadata[["file_name", "text"]])
        report(f"wrote {n_images} {IMAGE_SIZE}-px image-caption pairs to {out / 'images'}")
    _write_json(out / "eval_prompts.json", EVAL_PROMPTS)
    _write_json(out / "search_prompts.json", SEARCH_PROMPTS)
    for style, prompts in HPS_STYLES.items():
        _write_json(out / "hps_benchmark" / f"{style}.json", prompts)
    return out


def _write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        path.write_text(json.dumps(value, indent=1))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python -m delta_diff.sd_shaped.smoke OUT_DIR", file=sys.stderr)
        return 2
    build_smoke_inputs(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
