"""HPS v2 at its real architecture: a randomly initialised open_clip ViT-H-14 saved in HPS v2's checkpoint format
(the real fine-tuned weights cannot be downloaded here) loads through the scorer's own path and scores images.

Measured here (2 CPU cores, fp32, 3 images at 224 px): see the printed line; the child's peak RSS stays under the
suite's 20 GB budget (the checkpoint is memory-mapped, so it is not held twice).
"""

import math
import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

pytest.importorskip("hpsv2")


def _score_with_random_vit_h(folder: str) -> dict:
    from pathlib import Path

    from PIL import Image

    from delta_diff.scoring.hps_v2 import load_hps_scorer
    from delta_diff.sd_shaped import write_random_hps_checkpoint

    start = time.perf_counter()
    path = write_random_hps_checkpoint(Path(folder) / "HPS_random_vit_h_14.pt", "ViT-H-14", seed=0)
    written = time.perf_counter()
    scorer = load_hps_scorer(path, model_name="ViT-H-14")
    loaded = time.perf_counter()
    images = [Image.new("RGB", (256, 256), colour) for colour in ("red", "blue", "white")]
    result = scorer.score(images, ["a red square", "a blue square", "a white square"])
    return {"scores": result.per_image["score"].tolist(), "metric": result.metric,
            "params": sum(p.numel() for p in scorer.model.parameters()),
            "checkpoint_gb": path.stat().st_size / 1024**3, "write_s": written - start, "load_s": loaded - written,
            "score_s": time.perf_counter() - loaded,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}


@pytest.mark.slow
def test_a_random_vit_h_14_in_hps_format_scores_images_through_the_scorer(tmp_path):
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        measured = pool.submit(_score_with_random_vit_h, str(tmp_path)).result()
    print(f"\nHPS v2 ViT-H-14 (random): {measured['params']:,} params, checkpoint {measured['checkpoint_gb']:.2f} GB, "
          f"write {measured['write_s']:.1f} s, load {measured['load_s']:.1f} s, score 3 images "
          f"{measured['score_s']:.1f} s, peak RSS {measured['peak_rss_gb']:.1f} GB")
    assert measured["metric"] == "hps_v2.0"
    assert measured["params"] > 900_000_000  # ViT-H-14: ~986M (vision 632M + text 354M)
    assert len(measured["scores"]) == 3 and all(math.isfinite(s) and -1 <= s <= 1 for s in measured["scores"])
    assert measured["peak_rss_gb"] < 20
