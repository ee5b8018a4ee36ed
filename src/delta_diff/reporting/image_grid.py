"""A labelled image grid (matplotlib figure) for reports, validation samples and the README."""

from __future__ import annotations

from PIL import Image


def image_grid(images: list[Image.Image], captions: list[str] | None = None, columns: int = 8, scale: int = 3):
    """A labelled grid (matplotlib figure) for reports and the README."""
    import matplotlib.pyplot as plt

    rows = (len(images) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.9, rows * 2.2), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, image in enumerate(images):
        ax = axes.flat[i]
        ax.imshow(image.resize((image.width * scale, image.height * scale), Image.NEAREST))
        if captions:
            ax.set_title(_wrap(captions[i]), fontsize=6)
    figure.tight_layout()
    return figure


def _wrap(text: str, width: int = 26) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if len(line) + len(word) + 1 > width and line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join(lines + [line])
