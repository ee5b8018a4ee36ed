"""Draw one scene: supersampled with PIL and downscaled, so edges are smooth like a real image's."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw

from .spec import Scene, WorldSpec

SUPERSAMPLE = 4

# Object centre for each position, as fractions of the image side.
CENTRES = {
    "top left": (0.28, 0.28),
    "top right": (0.72, 0.28),
    "bottom left": (0.28, 0.72),
    "bottom right": (0.72, 0.72),
    "center": (0.5, 0.5),
}


def render_scene(scene: Scene, spec: WorldSpec) -> Image.Image:
    side = spec.image_size * SUPERSAMPLE
    image = Image.new("RGB", (side, side), spec.backgrounds[scene.background])
    draw = ImageDraw.Draw(image)
    cx, cy = CENTRES[scene.position]
    cx, cy = (cx + scene.jitter[0]) * side, (cy + scene.jitter[1]) * side
    radius = spec.sizes[scene.size] * scene.scale * side / 2
    colour = spec.colours[scene.colour]
    if scene.shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
    else:
        corners = 4 if scene.shape == "square" else 3
        # A square's corners sit on a circle of radius r*sqrt(2) so its side is 2r; triangles get a bit more room.
        reach = radius * (math.sqrt(2) if corners == 4 else 1.25)
        start = (45 if corners == 4 else -90) + scene.rotation
        points = [
            (cx + reach * math.cos(math.radians(start + k * 360 / corners)),
             cy + reach * math.sin(math.radians(start + k * 360 / corners)) + (0.2 * radius if corners == 3 else 0))
            for k in range(corners)
        ]
        draw.polygon(points, fill=colour)
    return image.resize((spec.image_size, spec.image_size), Image.LANCZOS)
