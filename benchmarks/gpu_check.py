r"""GPU check at SD v1.4's full shapes: the library's search proxies, a short distillation, the evaluation measures
and SD v1.4 -> BK-SDM-Small KD steps at 512 px (delta-diff's cached step vs the plain loop of
``benchmarks/plain_kd_step.py``: samples/s, peak GPU memory, MFU), in one call on one lent H200.

It builds the random-weight SD v1.4-shaped pipeline on the spot (``delta_diff.sd_shaped``), places it with
``DevicePolicy(device="cuda", frozen_dtype="bf16", mixed_precision="bf16")`` and runs each section under a
wall-clock guard (``--budget-s``): a section that would outlast it is stopped and recorded as not run. Every number
goes to ``$OUT/gpu_check.json`` (rewritten after each section, so a killed run keeps what it measured) and is
printed. MFU is the FLOPs of one step (``torch.utils.flop_counter.FlopCounterMode``, counted once) over the median
step time, against the H200's dense bf16 peak of about 990 TFLOP/s (datasheet value quoted in
/work/.library/device/H200.md) and against the bf16 matrix-product rate this run measures itself.

Usage on the device machine. Its image has torch, transformers, accelerate, safetensors, tokenizers, pandas and
scikit-learn (Python 3.12) but not diffusers, this project, or the project's other imports (pydantic, pymoo,
xgboost, hpsv2x: no kedro or mlflow, which nothing here imports; the JSON's ``imported_packages`` lists what was).
Carry them as wheels in ``.whl`` (git-ignored through ``.git/info/exclude``, per /work/.library/device/README.md;
about 31 MB). Here, in the repository root, with ``PLATFORMS="--python-version 3.12 --implementation cp --platform
manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"``:

    .venv/bin/python -m pip download --no-deps --only-binary=:all: $PLATFORMS -d .whl diffusers==0.42.1 \
        pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
        typing-extensions==4.16.0 pymoo==0.6.2 moocore==0.3.2 cffi==2.1.1 pycparser==3.12 platformdirs==4.14.9 \
        alive-progress==3.3.0 about-time==4.2.1 graphemeu==0.7.2 xgboost-cpu==3.2.0 ftfy==6.3.1 wcwidth==0.9.4
    .venv/bin/python -m pip download --no-deps -d /tmp/sdists hpsv2x==1.2.0 clint==0.5.1 args==0.1.0
    .venv/bin/python -m pip wheel --no-deps -w .whl /tmp/sdists/*.tar.gz .   # pure Python; and this project

(hpsv2x holds the BPE file the CLIP tokenizer is converted from, and its open_clip is the HPS scorer; without this
project's wheel the script falls back to the travelling ``src/``; ``pip wheel .`` leaves a ``build/`` to delete.)
Then one call, ``carry: [".whl"]``, ``timeout_s: 540``:

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl && export PYTHONPATH=/tmp/site || exit; PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py

The default budget is 450 s of the check's own wall clock (at most 8 minutes with the start-up), inside the
session's 15 minutes of device time (the full-size build alone took 35 s on this project's 2-core CPU machine; its
time there is in the JSON). Here (no GPU),
``--cpu-smoke`` runs every section at width scale 0.125, 64 px, 1-2 steps, fp32 on the CPU
(tests/benchmarks/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import resource
import signal
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # plain_kd_step, also when run from the repository root
if importlib.util.find_spec("delta_diff") is None and (HERE.parent / "src" / "delta_diff").is_dir():
    sys.path.insert(0, str(HERE.parent / "src"))  # the project travels as its working tree when not installed

H200_DENSE_BF16_FLOPS = 990e12  # /work/.library/device/H200.md: "dense bf16 about 990 TFLOP/s" (datasheet)
HPS_MODEL = "ViT-S-32-alt"  # a random stand-in for HPS v2's ViT-H-14: the real scorer's code path
PRESETS = ("bk-sdm-small", "bk-sdm-tiny")
KD_PRESET = "bk-sdm-small"


@dataclass(frozen=True)
class Settings:
    width_scale: float
    resolution: int
    n_images: int  # world images in the training cache (and the plain loop's pixels)
    probe_prompts: int
    probe_timesteps: tuple[int, ...]
    theta_prompts: int
    sampling_steps: int  # Theta's and the PSNR images'
    distill_steps: int
    distill_batch: int
    latency_repeats: int
    kd_batch: int
    kd_warmup: int
    kd_steps: int
    matmul_size: int
    budget_s: float


GPU = Settings(width_scale=1.0, resolution=512, n_images=32, probe_prompts=4, probe_timesteps=(250, 750),
               theta_prompts=2, sampling_steps=10, distill_steps=5, distill_batch=8, latency_repeats=10,
               kd_batch=16, kd_warmup=3, kd_steps=10, matmul_size=8192, budget_s=450)
CPU_SMOKE = Settings(width_scale=0.125, resolution=64, n_images=4, probe_prompts=1, probe_timesteps=(500,),
                     theta_prompts=1, sampling_steps=2, distill_steps=2, distill_batch=2, latency_repeats=2,
                     kd_batch=2, kd_warmup=1, kd_steps=2, matmul_size=1024, budget_s=300)
SECTIONS = ("environment", "matmul_ceiling", "build", "proxies", "distill", "evaluation", "kd_ours", "kd_plain")


class TimeUp(BaseException):
    """The wall-clock guard fired (a BaseException, so that no ``except Exception`` in library code swallows it)."""


class Check:
    def __init__(self, settings: Settings, cpu_smoke: bool, work: Path, out: Path | None):
        self.settings, self.cpu_smoke, self.work, self.out = settings, cpu_smoke, work, out
        self.started = time.perf_counter()
        self.results: dict = {"mode": "cpu-smoke" if cpu_smoke else "gpu", "settings": asdict(settings),
                              "sections": {}}
        self.state: dict = {}
        self.stopped = False

    # -- bookkeeping ---------------------------------------------------------------------------------------
    def run(self, name: str, function) -> None:
        if self.stopped:
            self.results["sections"][name] = {"not_run": "the wall-clock guard stopped the check earlier"}
        else:
            began = time.perf_counter()
            try:
                self.results["sections"][name] = {**function(), "seconds": time.perf_counter() - began}
            except TimeUp:
                self.stopped = True
                self.results["sections"][name] = {
                    "not_run": f"stopped by the {self.settings.budget_s:.0f} s wall-clock guard after "
                               f"{time.perf_counter() - began:.0f} s in this section"}
            except Exception as error:  # record it and go on: later sections may still measure something
                self.results["sections"][name] = {"error": f"{type(error).__name__}: {error}",
                                                  "traceback": traceback.format_exc()[-3000:]}
        self.results["wall_s"] = time.perf_counter() - self.started
        self.results["complete"] = all(
            not ({"error", "not_run"} & set(self.results["sections"].get(s, {"not_run": 1}))) for s in SECTIONS)
        self.write()
        print(f"[{self.results['wall_s']:6.1f} s] {name}: {_short(self.results['sections'][name])}", flush=True)

    def write(self) -> None:
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            staging = self.out / ".gpu_check.json.writing"
            staging.write_text(json.dumps(self.results, indent=1, default=str))
            os.replace(staging, self.out / "gpu_check.json")

    def needs(self, *keys: str) -> None:
        missing = [k for k in keys if k not in self.state]
        if missing:
            raise RuntimeError(f"needs {', '.join(missing)} from an earlier section, which did not finish")

    def synchronize(self) -> None:
        if self.policy.torch_device.type == "cuda":
            import torch

            torch.cuda.synchronize()

    def reset_peak_memory(self) -> None:
        import torch

        if self.policy.torch_device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak_memory(self) -> dict:
        import torch

        if self.policy.torch_device.type == "cuda":
            return {"peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9,
                    "peak_memory_kind": "torch.cuda.max_memory_allocated"}
        return {"peak_memory_gb": _peak_rss_gb(), "peak_memory_kind": "process peak RSS (CPU run)"}

    # -- sections ------------------------------------------------------------------------------------------
    def environment(self) -> dict:
        import torch

        from delta_diff.sd import DevicePolicy

        if self.cpu_smoke:
            self.policy = DevicePolicy(device="cpu")
        else:
            self.policy = DevicePolicy(device="cuda", frozen_dtype="bf16", mixed_precision="bf16")
        try:
            importlib.import_module("hpsv2.src.open_clip")
            self.state["hps_problem"] = None
        except ImportError as error:
            self.state["hps_problem"] = f"hpsv2's open_clip is not importable ({error}): Theta not run"
        device = self.policy.torch_device
        info = {"python": sys.version.split()[0], "torch": torch.__version__,
                "diffusers": importlib.import_module("diffusers").__version__,
                "transformers": importlib.import_module("transformers").__version__,
                "accelerate": importlib.import_module("accelerate").__version__,
                "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                "cpu_threads": torch.get_num_threads(), "policy": self.policy.model_dump(),
                "hps_available": self.state["hps_problem"] is None}
        if self.state["hps_problem"]:
            info["hps_problem"] = self.state["hps_problem"]
        return info

    def matmul_ceiling(self) -> dict:
        """The matrix-product rate this device reaches in the frozen dtype, on random data (a measured ceiling
        to read MFU against, beside the datasheet's)."""
        import torch

        n, device, dtype = self.settings.matmul_size, self.policy.torch_device, self.policy.frozen_torch_dtype
        generator = torch.Generator(device=device).manual_seed(0)
        a = torch.randn(n, n, device=device, dtype=dtype, generator=generator)
        b = torch.randn(n, n, device=device, dtype=dtype, generator=generator)
        for _ in range(3):
            a @ b
        repeats = 10 if device.type == "cuda" else 3
        self.synchronize()
        began = time.perf_counter()
        for _ in range(repeats):
            a @ b
        self.synchronize()
        seconds = (time.perf_counter() - began) / repeats
        self.state["matmul_flops"] = 2 * n ** 3 / seconds
        return {"size": n, "dtype": str(dtype), "tflops": self.state["matmul_flops"] / 1e12}

    def build(self) -> dict:
        from diffusers import StableDiffusionPipeline

        from delta_diff.architecture import count_params
        from delta_diff.sd_shaped import build_sd_shaped

        scale = self.settings.width_scale
        began = time.perf_counter()
        folder = build_sd_shaped("sd-v1-4", self.work / f"sd-v1-4-w{scale:g}-seed0", width_scale=scale, seed=0,
                                 report=lambda line: None)
        build_s = time.perf_counter() - began
        began = time.perf_counter()
        pipeline = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True, use_safetensors=True)
        load_s = time.perf_counter() - began
        began = time.perf_counter()
        self.policy.place_frozen(pipeline)
        self.synchronize()
        self.state["teacher"] = pipeline
        return {"build_s": build_s, "load_s": load_s, "place_s": time.perf_counter() - began,
                "unet_params": count_params(dict(pipeline.unet.config)),
                "unet_dtype": str(pipeline.unet.dtype), "unet_device": str(pipeline.unet.device)}

    def proxies(self) -> dict:
        import torch

        from delta_diff.architecture import ArchitectureSpace, preset_genome
        from delta_diff.data import read_image_folder, write_image_folder
        from delta_diff.data.latent_cache import build_training_cache
        from delta_diff.sd import training_noise_scheduler
        from delta_diff.sd_shaped import write_random_hps_checkpoint
        from delta_diff.search import ProxyEvaluator, ThetaSetup
        from delta_diff.similarity import attention_maps, map_similarity, probe_from_cache
        from delta_diff.world import WorldSpec, make_world_images

        self.needs("teacher")
        teacher, s = self.state["teacher"], self.settings
        images, metadata = make_world_images(WorldSpec(image_size=s.resolution), "train", s.n_images, 1)
        folder = read_image_folder(write_image_folder(self.work / "images", images, metadata[["file_name", "text"]]))
        began = time.perf_counter()
        # text embeddings cached: the timed KD step is the U-Nets' work alone, as the plain loop's comparison needs
        cache = build_training_cache(folder, teacher, s.resolution, self.work / "cache", text="embeddings",
                                     show_progress=False)
        cache_s = time.perf_counter() - began
        noise_scheduler = training_noise_scheduler(teacher)
        tokenizer = teacher.tokenizer
        probe = probe_from_cache(cache, [tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id],
                                 s.probe_prompts, list(s.probe_timesteps), noise_scheduler, seed=0)
        scorer = None
        if self.state["hps_problem"] is None:
            from delta_diff.scoring.hps_v2 import HPSv2Scorer

            checkpoint = write_random_hps_checkpoint(self.work / "hps_random.pt", HPS_MODEL, seed=0)
            scorer = HPSv2Scorer(checkpoint, model_name=HPS_MODEL, policy=self.policy)
        space = ArchitectureSpace(dict(teacher.unet.config))
        theta = ThetaSetup(folder.captions[: s.theta_prompts], list(range(s.theta_prompts)), s.sampling_steps,
                           resolution=s.resolution)
        began = time.perf_counter()
        evaluator = ProxyEvaluator(teacher, space, probe, scorer, theta)
        setup_s = time.perf_counter() - began
        result = {"cache_build_s": cache_s, "cache_images": len(folder), "probe_rows": len(probe.noisy_latents),
                  "evaluator_setup_s": setup_s, "theta_scorer": f"HPS v2 format, random {HPS_MODEL}" if scorer
                  else self.state["hps_problem"]}
        for preset in PRESETS:
            genome = preset_genome(space, preset)
            if scorer is not None:
                proxies = evaluator.evaluate(genome)
            else:  # Phi and eps as evaluate() computes them, without the image metric
                began = time.perf_counter()
                candidate = evaluator.prune(genome).eval()
                proxies = {"phi": map_similarity(evaluator.parent_maps, attention_maps(candidate, probe),
                                                 probe.word_tokens),
                           "eps_mse": float(torch.nn.functional.mse_loss(evaluator._eps(candidate),
                                                                         evaluator.parent_eps)),
                           "params": sum(p.numel() for p in candidate.parameters()),
                           "proxy_seconds": time.perf_counter() - began}
                del candidate
            result[preset] = {k: proxies[k] for k in ("phi", "theta", "eps_mse", "params", "proxy_seconds")
                              if k in proxies}
        self.state.update(cache=cache, folder=folder, probe=probe, space=space, noise_scheduler=noise_scheduler)
        return result

    def distill(self) -> dict:
        from delta_diff.architecture import preset_genome, prune
        from delta_diff.distill import DistillConfig, distill_student
        from delta_diff.training import weights_digest

        self.needs("cache", "space")
        teacher, s = self.state["teacher"], self.settings
        student = prune(teacher.unet, preset_genome(self.state["space"], KD_PRESET), self.state["space"])
        digest = weights_digest(teacher.unet)
        self.reset_peak_memory()
        trained, history = distill_student(
            teacher.unet, student, self.state["cache"], self.state["noise_scheduler"],
            DistillConfig(steps=s.distill_steps, batch_size=s.distill_batch, log_every=1), policy=self.policy,
            show_progress=False)
        del student
        self.state["student"] = self.policy.frozen_copy(trained)  # placed like the teacher, for sampling
        del trained
        return {"preset": KD_PRESET, "steps": s.distill_steps, "batch": s.distill_batch,
                "losses": [row["loss"] for row in history], "samples_per_s": [row["samples_per_s"] for row in history],
                "teacher_unchanged": weights_digest(teacher.unet) == digest, **self.peak_memory()}

    def evaluation(self) -> dict:
        from delta_diff.evaluation.cost import macs_per_forward, median_latency_ms
        from delta_diff.evaluation.fidelity import psnr
        from delta_diff.sd import generate_images, unet_swapped_in
        from delta_diff.similarity import attention_maps, map_similarity

        self.needs("student", "probe")
        teacher, student, s, probe = self.state["teacher"], self.state["student"], self.settings, self.state["probe"]
        tokens, latent = teacher.tokenizer.model_max_length, s.resolution // teacher.vae_scale_factor
        prompts = self.state["folder"].captions[: s.theta_prompts]
        seeds = list(range(len(prompts)))
        teacher_images = generate_images(teacher, prompts, seeds, s.sampling_steps, show_progress=False,
                                         resolution=s.resolution)
        with unet_swapped_in(teacher, student) as pipeline:
            student_images = generate_images(pipeline, prompts, seeds, s.sampling_steps, show_progress=False,
                                             resolution=s.resolution)
        result = {"psnr_student_vs_teacher_db": psnr(teacher_images, student_images),
                  "attention_alignment_with_teacher": map_similarity(attention_maps(teacher.unet, probe),
                                                                     attention_maps(student, probe),
                                                                     probe.word_tokens)}
        for name, unet in (("teacher", teacher.unet), (KD_PRESET, student)):
            result[name] = {
                "gmacs_per_forward": macs_per_forward(unet, tokens=tokens, latent_size=latent) / 1e9,
                "latency_ms": median_latency_ms(unet, repeats=s.latency_repeats, warmup=2, tokens=tokens,
                                                latent_size=latent)}
        del self.state["student"]
        return result

    def kd_ours(self) -> dict:
        from torch.utils.flop_counter import FlopCounterMode

        from delta_diff.architecture import preset_genome, prune
        from delta_diff.distill import DistillConfig, distill_student

        self.needs("cache", "space")
        teacher, s = self.state["teacher"], self.settings
        student = prune(teacher.unet, preset_genome(self.state["space"], KD_PRESET), self.state["space"])
        config = DistillConfig(steps=s.kd_warmup + s.kd_steps, batch_size=s.kd_batch, log_every=1)
        distil = lambda c: distill_student(teacher.unet, student, self.state["cache"],  # noqa: E731
                                           self.state["noise_scheduler"], c, policy=self.policy, show_progress=False)
        self.reset_peak_memory()
        _, history = distil(config)
        memory = self.peak_memory()
        # The trainer logs every step: its per-step clock covers the whole step, and its loss.item() waits for
        # the step's kernels.
        step_s = [s.kd_batch / row["samples_per_s"] for row in history[s.kd_warmup:]]
        with FlopCounterMode(display=False) as counter:
            distil(config.model_copy(update={"steps": 1}))
        return self._rates("ours: distill_student on the cache", step_s, counter.get_total_flops(), memory,
                           losses=[row["loss"] for row in history])

    def kd_plain(self) -> dict:
        from plain_kd_step import BK_SDM_FEATURE_PAIRS, PlainKD
        from torch.utils.flop_counter import FlopCounterMode

        from delta_diff.architecture import preset_genome, prune
        from delta_diff.data.latent_cache import pil_batch_to_pixels
        from delta_diff.sd import DTYPES

        self.needs("folder", "space")
        teacher, s, folder = self.state["teacher"], self.settings, self.state["folder"]
        self.reset_peak_memory()
        student = self.policy.trainable_copy(
            prune(teacher.unet, preset_genome(self.state["space"], KD_PRESET), self.state["space"]))
        pixels = pil_batch_to_pixels([folder.load_image(i) for i in range(len(folder))], s.resolution)
        loop = PlainKD(teacher.vae, teacher.text_encoder, teacher.tokenizer, teacher.unet, student,
                       self.state["noise_scheduler"], BK_SDM_FEATURE_PAIRS[KD_PRESET],
                       pixels.to(self.policy.torch_device), folder.captions, s.kd_batch,
                       autocast_dtype=None if self.policy.mixed_precision == "no"
                       else DTYPES[self.policy.mixed_precision])
        rows = [loop.step() for _ in range(s.kd_warmup + s.kd_steps)][s.kd_warmup:]
        memory = self.peak_memory()
        with FlopCounterMode(display=False) as counter:
            loop.step()
        phases = {key: statistics.median(row[key] for row in rows)
                  for key in ("vae_encode_s", "text_encode_s", "teacher_forward_s", "student_step_s")}
        return self._rates("plain: VAE + text encoder + teacher + student + AdamW every step",
                           [row["step_s"] for row in rows], counter.get_total_flops(), memory,
                           losses=[row["loss"] for row in rows], median_phases_s=phases)

    def _rates(self, loop: str, step_s: list[float], flops: int, memory: dict, **extra) -> dict:
        median = statistics.median(step_s)
        result = {"loop": loop, "preset": KD_PRESET, "resolution": self.settings.resolution,
                  "batch": self.settings.kd_batch, "timed_steps": len(step_s), "step_s": step_s,
                  "median_step_s": median, "samples_per_s": self.settings.kd_batch / median,
                  "flops_per_step": flops, "achieved_tflops": flops / median / 1e12, **memory, **extra}
        if "matmul_flops" in self.state:
            result["mfu_vs_measured_matmul"] = flops / median / self.state["matmul_flops"]
        if self.policy.torch_device.type == "cuda":
            result["mfu_vs_h200_datasheet"] = flops / median / H200_DENSE_BF16_FLOPS
        return result


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux reports KiB


def _short(section: dict) -> str:
    if "error" in section or "not_run" in section:
        return section.get("error") or section["not_run"]
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in section.items()
                     if isinstance(v, (int, float, str)) and not isinstance(v, bool))[:400]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="every section at width scale 0.125, 64 px, 1-2 steps, fp32 on the CPU")
    parser.add_argument("--budget-s", type=float, help="wall-clock guard in seconds (default 450 GPU, 300 smoke)")
    parser.add_argument("--work-dir", type=Path, help="where the pipeline and images are written (default: a "
                        "temporary folder, removed afterwards)")
    args = parser.parse_args(argv)
    settings = CPU_SMOKE if args.cpu_smoke else GPU
    if args.budget_s is not None:
        settings = Settings(**{**asdict(settings), "budget_s": args.budget_s})
    out = Path(os.environ["OUT"]) if os.environ.get("OUT") else None

    def time_up(signum, frame):
        raise TimeUp

    signal.signal(signal.SIGALRM, time_up)
    signal.setitimer(signal.ITIMER_REAL, settings.budget_s)
    with tempfile.TemporaryDirectory(dir=args.work_dir) as work:
        check = Check(settings, args.cpu_smoke, Path(work), out)
        try:
            for name in SECTIONS:
                check.run(name, getattr(check, name))
        except TimeUp:  # fired between two sections: the rest are recorded as not run
            check.stopped = True
            for name in SECTIONS:
                check.results["sections"].setdefault(name, {"not_run": "the wall-clock guard stopped the check"})
        signal.setitimer(signal.ITIMER_REAL, 0)
        # Which third-party packages the check imported: the device image must have (or be carried) each.
        check.results["imported_packages"] = sorted(
            {m.split(".")[0] for m in sys.modules if not m.startswith("_")} - set(sys.stdlib_module_names))
        check.results["kedro_or_mlflow_imported"] = any(
            m.split(".")[0] in ("kedro", "mlflow", "kedro_datasets", "kedro_mlflow") for m in sys.modules)
        check.write()
    print(json.dumps(check.results, indent=1, default=str))
    # A short table last: the device tool's reply keeps only the end of the output.
    for name, section in check.results["sections"].items():
        print(f"{name:<15} {_short(section)}")
    print(f"complete: {check.results['complete']}, {check.results['wall_s']:.0f} s")
    return 0 if check.results["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
