"""HPS v2 (Wu et al., 2023, "Human Preference Score v2") behind the scorer interface, from local files only.

The ``hpsv2`` package's own ``score()`` downloads ViT-H-14 and the HPS checkpoint and reloads them on every call
(DESIGN.md §6). Here its bundled open_clip builds the architecture with no pretrained weights and the local HPS
checkpoint (which holds the whole fine-tuned CLIP) is loaded once, with ``weights_only=True``. The score of an
image is the cosine similarity of its normalised image and prompt features, as in ``hpsv2.img_score`` (about
0.2-0.3 for SD-family images; papers often print it x100, DELTA-Diff's table x10,000).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from PIL import Image

from .interface import ScoreResult

HPS_VERSION = "v2.0"  # the checkpoint HPS_v2_compressed.pt; v2.1 is HPS_v2.1_compressed.pt


def checkpoint_problem(path: str | Path | None, key: str) -> str | None:
    """Why ``path`` (the value of config key ``key``) cannot be the HPS v2 checkpoint, or None if it can be.
    Parameter validators call it so a bad path fails when a run starts, not after hours of training."""
    if path is not None and Path(path).is_file():
        return None
    shown = None if path is None else str(path)
    return (f"{key} {shown!r} is not a file; download HPS_v2_compressed.pt (huggingface xswu/HPSv2) on a machine "
            "with access and give its local path")


class HPSv2Scorer:
    name = "hps_v2"

    def __init__(self, checkpoint: str | Path, model_name: str = "ViT-H-14", version: str = HPS_VERSION,
                 policy=None, batch_size: int = 8, key: str = "evaluate.hps_checkpoint"):
        """Loads the checkpoint once; the model runs on ``policy``'s device in its frozen dtype (a scorer is a
        frozen model; default ``DevicePolicy()``)."""
        from delta_diff.sd import DevicePolicy

        policy = policy or DevicePolicy()
        problem = checkpoint_problem(checkpoint, key)
        if problem:
            raise FileNotFoundError(problem)
        checkpoint = Path(checkpoint)
        try:
            from hpsv2.src.open_clip import create_model_and_transforms, get_tokenizer
        except ImportError as error:
            raise ImportError("HPS v2 needs the hpsv2x package: pip install --no-deps hpsv2x==1.2.0 and the "
                              "project's [hps] extra (see README, HPS v2)") from error
        self.version, self.batch_size = version, batch_size
        self.device, self.dtype = policy.torch_device, policy.frozen_torch_dtype
        self.model, _, self.preprocess = create_model_and_transforms(model_name, pretrained=None, precision="fp32",
                                                                     device="cpu", output_dict=True)
        # Memory-mapped: the 3.9 GB ViT-H-14 checkpoint is paged in as it is copied, not held twice in RAM.
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # a checkpoint in torch's legacy (non-zip) format cannot be memory-mapped
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
        try:
            self.model.load_state_dict(state)
        except RuntimeError as error:  # missing/unexpected keys or shapes: say which file and architecture
            raise ValueError(f"{checkpoint} does not fit open_clip {model_name}: "
                             f"{str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else error}") from None
        policy.place_frozen(self.model)
        self.tokenizer = get_tokenizer(model_name)

    @torch.no_grad()
    def score(self, images: list[Image.Image], prompts: list[str]) -> ScoreResult:
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        scores = []
        for start in range(0, len(images), self.batch_size):
            batch = torch.stack([self.preprocess(im.convert("RGB")) for im in images[start:start + self.batch_size]])
            text = self.tokenizer(prompts[start:start + self.batch_size])
            out = self.model(batch.to(self.device, self.dtype), text.to(self.device))
            image_features = torch.nn.functional.normalize(out["image_features"], dim=-1)
            text_features = torch.nn.functional.normalize(out["text_features"], dim=-1)
            scores += (image_features * text_features).sum(-1).float().cpu().tolist()
        per_image = pd.DataFrame({"prompt": prompts, "score": scores})
        return ScoreResult(metric=f"hps_{self.version}", available=True, per_image=per_image,
                           summary={"score": float(per_image["score"].mean())})


_LOADED: dict[tuple, HPSv2Scorer] = {}


def load_hps_scorer(checkpoint: str | Path, model_name: str = "ViT-H-14", policy=None,
                    key: str = "evaluate.hps_checkpoint") -> HPSv2Scorer:
    """The HPS v2 scorer for this checkpoint, loaded once per process (a run's search stages and evaluate share
    it): the same file (path, size, modification time), architecture, device and dtype give the same object."""
    from delta_diff.sd import DevicePolicy

    policy = policy or DevicePolicy()
    problem = checkpoint_problem(checkpoint, key)
    if problem:
        raise FileNotFoundError(problem)
    stat = Path(checkpoint).stat()
    identity = (str(Path(checkpoint).resolve()), stat.st_size, stat.st_mtime_ns, model_name,
                str(policy.torch_device), policy.frozen_dtype)
    if identity not in _LOADED:
        _LOADED.clear()  # one checkpoint in memory at a time
        _LOADED[identity] = HPSv2Scorer(checkpoint, model_name=model_name, policy=policy, key=key)
    return _LOADED[identity]
