"""Writers of tiny fake video datasets in the published layouts (used by the data and
evaluation tests).

Every fake clip's frame ``n`` is a solid colour ``(R, 10 n + 5, B)``: R and B identify the
clip (normalisation checks), G the frame number (temporal sampling checks).
"""

from __future__ import annotations

import csv
import json

import av
import numpy as np
from PIL import Image

W, H = 64, 48
COL = {"a": (200, 30), "b": (40, 220), "c": (120, 120), "d": (230, 200), "e": (20, 60)}


def _frame(colour, n):
    a = np.empty((H, W, 3), np.uint8)
    a[...] = (colour[0], 10 * n + 5, colour[1])
    return a


def write_video(path, colour, n=20, codec="mpeg4", rate=12):
    """A clip of ``n`` solid frames: all-intra mpeg4 in .mp4/.MP4 (exact to the YUV round
    trip), lossless VP9 (libvpx-vp9) in .webm, or lossless H.264 with a keyframe every 4
    frames and B-frames (to test seeking)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "webm" if path.suffix == ".webm" else "mp4"
    opts = {
        "mpeg4": {"qscale": "1", "g": "1"},
        "libvpx-vp9": {"lossless": "1", "deadline": "realtime", "cpu-used": "8"},
        "libx264": {"qp": "0", "x264-params": "keyint=4:min-keyint=4:scenecut=0:bframes=2"},
    }[codec]
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=rate, options=opts)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for i in range(n):
            c.mux(s.encode(av.VideoFrame.from_ndarray(_frame(colour, i), format="rgb24")))
        c.mux(s.encode())


def write_frames(folder, colour, n, name="{:05d}.jpg"):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):  # file number i + 1 holds frame i
        Image.fromarray(_frame(colour, i)).save(folder / name.format(i + 1), quality=95)


def write_csv(path, header, rows, delimiter=","):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        if header:
            w.writerow(header)
        w.writerows(rows)


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def corrupt(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
