"""Draw one scene: supersampled with PIL and downscaled, so edges are smooth like a real image's."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw

from .spec import GROUPS, QUAD_SLOTS, CountScene, PairScene, QuadScene, Scene, WorldSpec

SUPERSAMPLE = 4

# Object centre for each position, as fractions of the image side.
CENTRES = {
    "top left": (0.28, 0.28),
    "top right": (0.72, 0.28),
    "bottom left": (0.28, 0.72),
    "bottom right": (0.72, 0.72),
    "center": (0.5, 0.5),
}


# World v2: slot centres (the vertical place is jittered per object).
SLOT_CENTRES = {"left": (0.27, 0.5), "right": (0.73, 0.5)}
# World v6: the quadrants' centres (a quadrant is half the image wide; v6's largest object is 0.32 of it).
QUAD_CENTRES = {"top_left": (0.25, 0.25), "top_right": (0.75, 0.25),
                "bottom_left": (0.25, 0.75), "bottom_right": (0.75, 0.75)}


def render_scene(scene: Scene | PairScene | QuadScene | CountScene, spec: WorldSpec) -> Image.Image:
    side = spec.image_size * SUPERSAMPLE
    values = scene.attributes()
    image = Image.new("RGB", (side, side), spec.backgrounds[values["background"]])
    draw = ImageDraw.Draw(image)
    if isinstance(scene, CountScene):
        kinds = [(values[f"{g}_shape"], values[f"{g}_colour"]) for g in GROUPS
                 for _ in range(spec.count_of(values[f"{g}_count"]))]
        if len(scene.centres) != len(kinds):
            raise ValueError(f"a count scene asking for {len(kinds)} objects has {len(scene.centres)} centres")
        for (shape, colour), (cx, cy), scale, rotation in zip(kinds, scene.centres, scene.scale, scene.rotation):
            _draw_shape(draw, shape, spec.colours[colour], cx * side, cy * side,
                        spec.count_object_size * scale * side / 2, rotation)
        return image.resize((spec.image_size, spec.image_size), Image.LANCZOS)
    if isinstance(scene, QuadScene):
        for k, slot in enumerate(QUAD_SLOTS):
            cx, cy = QUAD_CENTRES[slot]
            cx, cy = (cx + scene.jitter[k][0]) * side, (cy + scene.jitter[k][1]) * side
            radius = spec.sizes[values[f"{slot}_size"]] * scene.scale[k] * side / 2
            _draw_shape(draw, values[f"{slot}_shape"], spec.colours[values[f"{slot}_colour"]], cx, cy, radius,
                        scene.rotation[k])
        return image.resize((spec.image_size, spec.image_size), Image.LANCZOS)
    if isinstance(scene, PairScene):
        for k, slot in enumerate(SLOT_CENTRES):
            cx, cy = SLOT_CENTRES[slot]
            cx, cy = (cx + scene.jitter[k][0]) * side, (cy + scene.jitter[k][1]) * side
            radius = spec.sizes[getattr(scene, f"{slot}_size")] * scene.scale[k] * side / 2
            _draw_shape(draw, getattr(scene, f"{slot}_shape"), spec.colours[getattr(scene, f"{slot}_colour")],
                        cx, cy, radius, scene.rotation[k])
        return image.resize((spec.image_size, spec.image_size), Image.LANCZOS)
    cx, cy = CENTRES[scene.position]
    cx, cy = (cx + scene.jitter[0]) * side, (cy + scene.jitter[1]) * side
    radius = spec.sizes[scene.size] * scene.scale * side / 2
    _draw_shape(draw, scene.shape, spec.colours[scene.colour], cx, cy, radius, scene.rotation)
    return image.resize((spec.image_size, spec.image_size), Image.LANCZOS)


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, colour, cx: float, cy: float, radius: float,
                rotation: float) -> None:
    if shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
    else:
        corners = 4 if shape == "square" else 3
        # A square's corners sit on a circle of radius r*sqrt(2) so its side is 2r; triangles get a bit more room.
        reach = radius * (math.sqrt(2) if corners == 4 else 1.25)
        start = (45 if corners == 4 else -90) + rotation
        points = [
            (cx + reach * math.cos(math.radians(start + k * 360 / corners)),
             cy + reach * math.sin(math.radians(start + k * 360 / corners)) + (0.2 * radius if corners == 3 else 0))
            for k in range(corners)
        ]
        draw.polygon(points, fill=colour)
