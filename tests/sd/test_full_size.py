"""The search's proxies and one KD step at SD v1.4's full shapes (random seeded weights, DESIGN.md §7), for the
BK-SDM-Small and -Tiny students: real parameter counts, BK-SDM's own feature pairs, a teacher left as it was,
and the memory a CPU run needs.

Each preset runs in a child process of its own (spawned, so it starts without this process's memory), and its
peak RSS is that child's own ``ru_maxrss``. Measured on this project's 2-core, 24 GB CPU machine
(``pytest -m slow -s tests/sd/test_full_size.py``; 128 px, 2 images, batch 2, fp32), in two runs while another
engineer's jobs shared the two cores (so the seconds vary up to 5x between runs; RSS does not):

    preset  proxy evaluation (evaluator setup)  KD step      peak RSS  whole child
    Small   15.7 s / 32.2 s  (2.6 s / 15.8 s)    33.1 / 63.0 s  15.3 GB   57 / 121 s
    Tiny    36.1 s /  6.9 s  (14.6 s / 2.4 s)    51.3 / 49.6 s  12.1 GB  113 /  64 s

The whole test took 195 s and 205 s with the pipeline folder already built; building it (the session fixture,
once) took 35 s at 5.0 GB peak. The proxy evaluation is one ``ProxyEvaluator.evaluate`` (prune, Phi, eps, two
sampling steps with guidance and HPS v2 on a random ViT-S-32-alt); the KD step is the whole ``distill_student``
call of one step (its fp32 copy, AdamW, teacher and student passes). The pipeline folder (4.3 GB) is cached under
data/01_raw/.sd_shaped (git-ignored).
"""

from __future__ import annotations

import math
import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import SD_SHAPED_DIR

FULL_SIZE_DIR = SD_SHAPED_DIR / "sd-v1-4-w1-seed0"
RESOLUTION = 128
HPS_MODEL = "ViT-S-32-alt"
PEAK_RSS_LIMIT_GB = 20.0

# BK-SDM's published parameter counts (paper Table 1, model cards) and its distillation script's module lists.
STUDENT_PARAMS = {"bk-sdm-small": 482_346_884, "bk-sdm-tiny": 323_384_964}
BK_SDM_PAIRS = {
    "bk-sdm-small": [(f"{side}_blocks.{i}", f"{side}_blocks.{i}") for side in ("down", "up") for i in range(4)],
    "bk-sdm-tiny": list(zip(
        ["down_blocks.0", "down_blocks.1", "down_blocks.2.attentions.0.proj_out", "up_blocks.0", "up_blocks.1",
         "up_blocks.2"],
        ["down_blocks.0", "down_blocks.1", "down_blocks.2.attentions.1.proj_out", "up_blocks.1", "up_blocks.2",
         "up_blocks.3"],
    )),
}


def _in_child(function, *args):
    """``function(*args)`` in a fresh spawned process; its exceptions are raised here."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def _build_full_size(out: str) -> str:
    from delta_diff.sd_shaped import build_sd_shaped

    return str(build_sd_shaped("sd-v1-4", out, width_scale=1.0, seed=0, report=lambda line: None))


@pytest.fixture(scope="session")
def full_size_sd_v1_4() -> Path:
    """The SD v1.4-shaped pipeline folder at full width (859,520,964 U-Net params), built once (35 s, 5 GB peak
    here, in a child so this process never holds it) and then reused across sessions by its stamp."""
    pytest.importorskip("hpsv2", reason="the CLIP tokenizer is converted from hpsv2x's BPE file")
    return Path(_in_child(_build_full_size, str(FULL_SIZE_DIR)))


def _proxies_and_kd_step(pipeline_dir: str, preset: str, work_dir: str) -> dict:
    """Runs in the child: load and place the pipeline, cache 2 images, one proxy evaluation, one KD step."""
    from diffusers import StableDiffusionPipeline

    from delta_diff.architecture import ArchitectureSpace, preset_genome, prune
    from delta_diff.data import read_image_folder, write_image_folder
    from delta_diff.data.latent_cache import build_training_cache
    from delta_diff.distill import DistillConfig, distill_student, feature_pairing
    from delta_diff.scoring.hps_v2 import HPSv2Scorer
    from delta_diff.sd import DevicePolicy, training_noise_scheduler
    from delta_diff.sd_shaped import write_random_hps_checkpoint
    from delta_diff.search import ProxyEvaluator, ThetaSetup
    from delta_diff.similarity import probe_from_cache
    from delta_diff.training import weights_digest
    from delta_diff.world import WorldSpec, make_world_images

    started = time.perf_counter()
    work = Path(work_dir)
    policy = DevicePolicy(device="cpu")
    teacher = policy.place_frozen(StableDiffusionPipeline.from_pretrained(pipeline_dir, local_files_only=True,
                                                                          use_safetensors=True))
    teacher_unet, digest_before = teacher.unet, weights_digest(teacher.unet)

    images, metadata = make_world_images(WorldSpec(image_size=RESOLUTION), "train", 2, 1)
    write_image_folder(work / "images", images, metadata[["file_name", "text"]])
    folder = read_image_folder(work / "images")
    cache = build_training_cache(folder, teacher, RESOLUTION, work / "cache", show_progress=False)  # token ids
    noise_scheduler = training_noise_scheduler(teacher)
    tokenizer = teacher.tokenizer
    probe = probe_from_cache(cache, [tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id], 1,
                             [500], noise_scheduler, seed=0, text_encoder=teacher.text_encoder)
    scorer = HPSv2Scorer(write_random_hps_checkpoint(work / "hps_random.pt", HPS_MODEL, seed=0),
                         model_name=HPS_MODEL, policy=policy)
    space = ArchitectureSpace(dict(teacher_unet.config))
    genome = preset_genome(space, preset)

    clock = time.perf_counter()
    evaluator = ProxyEvaluator(teacher, space, probe, scorer,
                               ThetaSetup([folder.captions[0]], [0], steps=2, resolution=RESOLUTION))
    setup_s = time.perf_counter() - clock
    clock = time.perf_counter()
    proxies = evaluator.evaluate(genome)
    proxy_s = time.perf_counter() - clock
    del evaluator, scorer

    student = prune(teacher_unet, genome, space)
    pairs = [list(pair) for pair in feature_pairing(student, teacher_unet).pairs]
    clock = time.perf_counter()
    trained, history = distill_student(teacher_unet, student, cache, noise_scheduler,
                                       DistillConfig(steps=1, batch_size=2, log_every=1), policy=policy,
                                       show_progress=False, text_encoder=teacher.text_encoder)
    kd_s = time.perf_counter() - clock
    return {
        "phi": proxies["phi"], "theta": proxies["theta"], "eps_mse": proxies["eps_mse"],
        "proxy_params": proxies["params"], "student_params": sum(p.numel() for p in trained.parameters()),
        "pairs": pairs, "kd_loss": history[-1]["loss"],
        "teacher_is_same_object": teacher.unet is teacher_unet,
        "teacher_dtype": str(teacher_unet.dtype),
        "teacher_digest_unchanged": weights_digest(teacher_unet) == digest_before,
        "teacher_frozen": not teacher_unet.training and not any(p.requires_grad for p in teacher_unet.parameters()),
        "evaluator_setup_s": setup_s, "proxy_s": proxy_s, "kd_step_s": kd_s,
        "child_s": time.perf_counter() - started,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,  # Linux: KiB
    }


@pytest.mark.slow
@pytest.mark.timeout(2400)  # the first session also builds the full-size folder
@pytest.mark.parametrize("preset", ["bk-sdm-small", "bk-sdm-tiny"])
def test_proxies_and_a_kd_step_at_full_sd_v1_4_shapes(full_size_sd_v1_4, preset, tmp_path):
    result = _in_child(_proxies_and_kd_step, str(full_size_sd_v1_4), preset, str(tmp_path))
    print(f"\n{preset} at full SD v1.4 shapes, {RESOLUTION} px, CPU fp32: proxy evaluation {result['proxy_s']:.1f} s "
          f"(evaluator setup {result['evaluator_setup_s']:.1f} s), KD step {result['kd_step_s']:.1f} s, peak RSS "
          f"{result['peak_rss_gb']:.1f} GB, child {result['child_s']:.0f} s")

    assert all(math.isfinite(result[k]) for k in ("phi", "theta", "eps_mse"))
    assert -1.0 <= result["phi"] <= 1.0
    assert math.isfinite(result["kd_loss"])
    assert [tuple(pair) for pair in result["pairs"]] == BK_SDM_PAIRS[preset]
    assert result["student_params"] == result["proxy_params"] == STUDENT_PARAMS[preset]
    assert result["teacher_is_same_object"] and result["teacher_frozen"]
    assert result["teacher_dtype"] == "torch.float32" and result["teacher_digest_unchanged"]
    assert result["peak_rss_gb"] < PEAK_RSS_LIMIT_GB
