"""Figures of a finished path: image grid, path plot, cross-attention maps per token."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402


def comparison_grid(rows: dict[str, list[Image.Image]], prompts: list[str]):
    """One row per model (teacher | path student | baseline), same prompts and seeds per column."""
    n = len(prompts)
    figure, axes = plt.subplots(len(rows), n, figsize=(1.6 * n, 1.8 * len(rows)), squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for c, image in enumerate(images):
            ax = axes[r, c]
            ax.imshow(image.resize((image.width * 3, image.height * 3), Image.NEAREST))
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
            if r == 0:
                ax.set_title("\n".join(prompts[c].split(" on ")), fontsize=5)
    figure.tight_layout()
    return figure


def path_plot(table: pd.DataFrame, metric: str = "world_score"):
    figure, ax = plt.subplots(figsize=(5.2, 3.6))
    chain = table[table["role"].isin(["teacher", "assistant", "student"])]
    ax.plot(chain["unet_params"] / 1e6, chain[metric], marker="o", label="DELTA-Diff path")
    for _, row in chain.iterrows():
        ax.annotate(row["model"], (row["unet_params"] / 1e6, row[metric]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    baseline = table[table["role"] == "baseline"]
    ax.scatter(baseline["unet_params"] / 1e6, baseline[metric], marker="x", s=80, color="red",
               label="single-step baseline")
    ax.invert_xaxis()
    ax.set_xlabel("U-Net parameters (M)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def attention_figure(maps: dict[str, "torch.Tensor"], tokens: list[str]):  # noqa: F821
    """Per word token (columns), each model's cross-attention map (rows) for one prompt."""
    figure, axes = plt.subplots(len(maps), len(tokens), figsize=(1.4 * len(tokens), 1.5 * len(maps)), squeeze=False)
    for r, (name, stack) in enumerate(maps.items()):
        for c, token in enumerate(tokens):
            ax = axes[r, c]
            ax.imshow(stack[c].numpy(), cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(token, fontsize=7)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    figure.tight_layout()
    return figure
