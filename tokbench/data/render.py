"""Vectorised drawing of synthetic clips (NumPy only, no torch).

A clip is a float32 canvas (T, H, W, 3) in [0, 1]. Shapes are drawn for all frames at
once from per-frame tracks (centre, radius, angle, visibility), each (T,), so one clip
costs a few dozen array operations whatever its length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SHAPES", "Track", "texture", "draw", "finish", "hsv", "linear_track"]

SHAPES = ("disk", "square", "triangle", "cross", "ring", "bar")


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """One RGB colour (3,) from hue/saturation/value in [0, 1]."""
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], dtype=np.float32)


def texture(rng: np.random.Generator, h: int, w: int, *, cells: int = 5, contrast: float = 0.25,
            base: np.ndarray | None = None) -> np.ndarray:
    """A smooth random background (h, w, 3): a coarse random colour grid, bilinearly
    upsampled, around a muted base colour."""
    base = rng.uniform(0.25, 0.6, 3).astype(np.float32) if base is None else base
    grid = base + rng.uniform(-contrast, contrast, (cells + 1, cells + 1, 3)).astype(np.float32)
    ys = np.linspace(0, cells, h, dtype=np.float32)
    xs = np.linspace(0, cells, w, dtype=np.float32)
    y0 = np.minimum(ys.astype(int), cells - 1)
    x0 = np.minimum(xs.astype(int), cells - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    g00, g01 = grid[y0][:, x0], grid[y0][:, x0 + 1]
    g10, g11 = grid[y0 + 1][:, x0], grid[y0 + 1][:, x0 + 1]
    top = g00 * (1 - fx) + g01 * fx
    bottom = g10 * (1 - fx) + g11 * fx
    return np.clip(top * (1 - fy) + bottom * fy, 0, 1)


@dataclass
class Track:
    """Per-frame pose of one shape; every field is (T,) float32 (``visible`` is bool)."""

    cy: np.ndarray
    cx: np.ndarray
    radius: np.ndarray
    angle: np.ndarray
    visible: np.ndarray


def linear_track(T: int, start: tuple[float, float], end: tuple[float, float], radius: float | tuple[float, float],
                 *, angle: float | tuple[float, float] = 0.0, frames: tuple[int, int] | None = None) -> Track:
    """Moves from ``start`` to ``end`` (y, x) linearly over ``frames`` (default: the whole
    clip), holding still outside them; radius and angle interpolate the same way."""
    a, b = frames or (0, T - 1)
    t = np.clip((np.arange(T, dtype=np.float32) - a) / max(b - a, 1), 0, 1)
    r0, r1 = (radius, radius) if np.isscalar(radius) else radius
    a0, a1 = (angle, angle) if np.isscalar(angle) else angle
    return Track(
        cy=start[0] + (end[0] - start[0]) * t, cx=start[1] + (end[1] - start[1]) * t,
        radius=r0 + (r1 - r0) * t, angle=a0 + (a1 - a0) * t, visible=np.ones(T, dtype=bool),
    )


def _mask(shape: str, grid: tuple[np.ndarray, np.ndarray], track: Track) -> np.ndarray:
    """(T, H, W) coverage in [0, 1] of ``shape`` along ``track``."""
    yy, xx = grid  # (1, H, W) each
    dy = yy - track.cy[:, None, None]
    dx = xx - track.cx[:, None, None]
    r = np.maximum(track.radius, 0.5)[:, None, None]
    cos, sin = np.cos(track.angle)[:, None, None], np.sin(track.angle)[:, None, None]
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos  # shape-aligned coordinates
    if shape == "disk":
        m = np.clip(r - np.sqrt(dx * dx + dy * dy) + 0.5, 0, 1)
    elif shape == "ring":
        d = np.sqrt(dx * dx + dy * dy)
        m = np.clip(r - d + 0.5, 0, 1) * np.clip(d - 0.55 * r + 0.5, 0, 1)
    elif shape == "square":
        m = (np.maximum(np.abs(u), np.abs(v)) <= 0.85 * r).astype(np.float32)
    elif shape == "triangle":  # apex towards -v
        m = ((v <= 0.7 * r) & (v >= -r + 1.9 * np.abs(u))).astype(np.float32)
    elif shape == "cross":
        arm = 0.33 * r
        m = (((np.abs(u) <= arm) & (np.abs(v) <= r)) | ((np.abs(v) <= arm) & (np.abs(u) <= r))).astype(np.float32)
    elif shape == "bar":
        m = ((np.abs(u) <= r) & (np.abs(v) <= 0.35 * r)).astype(np.float32)
    elif shape == "hand":  # a palm with a thumb: asymmetric, so rotation shows
        palm = np.clip(0.7 * r - np.sqrt(dx * dx + dy * dy) + 0.5, 0, 1)
        thumb = ((u >= 0) & (u <= 1.3 * r) & (np.abs(v) <= 0.25 * r)).astype(np.float32)
        m = np.maximum(palm, thumb)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return m * track.visible[:, None, None]


def draw(canvas: np.ndarray, shape: str, track: Track, color: np.ndarray) -> np.ndarray:
    """Paint ``shape`` in ``color`` (3,) or per-frame colours (T, 3) onto ``canvas``
    (T, H, W, 3), in place; returns the canvas."""
    T, H, W, _ = canvas.shape
    grid = (np.arange(H, dtype=np.float32)[None, :, None], np.arange(W, dtype=np.float32)[None, None, :])
    m = _mask(shape, grid, track)[..., None]  # (T, H, W, 1)
    color = np.asarray(color, dtype=np.float32)
    color = color[:, None, None, :] if color.ndim == 2 else color
    canvas *= 1 - m
    canvas += m * color
    return canvas


def finish(canvas: np.ndarray, rng: np.random.Generator, *, noise: float = 0.02) -> np.ndarray:
    """Add per-pixel sensor noise and quantise to uint8 (T, H, W, 3)."""
    canvas += rng.normal(0, noise, canvas.shape).astype(np.float32)
    return (np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)
