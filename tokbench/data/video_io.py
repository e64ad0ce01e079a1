"""Decode frames from video files (PyAV) and JPEG frame folders (Pillow).

Why PyAV directly and not pytorchvideo's data classes: those are ``IterableDataset``\\ s
with no ``len`` or random access (which sharding, ``limit`` and per-clip seeds need);
``import pytorchvideo.transforms`` fails on torchvision >= 0.17 (pytorchvideo#258); and
reading the six annotation formats ourselves gives one code path for all of them.
pytorchvideo decodes with PyAV as well (``pytorchvideo/data/encoded_video_pyav.py``), so the
frames are the same.

Both readers return ``uint8`` tensors ``(len(indices), H, W, 3)`` (RGB), the input of
:func:`tokbench.data.views.to_views`. Indices are relative to the segment
``[start_frame, end_frame)`` (0-based, end exclusive); they may repeat and come in any
order. ``indices`` may also be a function of the segment's frame count (decoded, not read
from container metadata, which is often wrong or 0, e.g. for webm) returning the indices,
so that sampling and decoding take one call. Any failure raises :class:`VideoReadError`.
Nothing is cached between calls.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tokbench.errors import TokbenchError

__all__ = ["VideoReadError", "read_video", "count_frames", "read_frame_folder", "require_av", "Indices"]

Indices = Sequence[int] | Callable[[int], Sequence[int]]

#: A segment starting this many seconds or more into a video is reached by seeking to the
#: keyframe before it (frame numbers then come from timestamps x frame rate) instead of
#: decoding from the first frame: needed for Epic-Kitchens' hour-long videos.
SEEK_MIN_SECONDS = 4.0

#: While counting frames, decoded frames are kept (in YUV) up to this many bytes, so a
#: short video is decoded once; a longer one is decoded a second time to pick its frames.
KEEP_BYTES = 128 << 20


class VideoReadError(OSError):
    """One video (or frame folder) could not be read: missing, corrupt, or no frames.

    Per-video and recoverable (the dataset skips the clip), so not a ``TokbenchError``.

    Attributes:
        path: the file or folder. reason: what went wrong, one line.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def require_av():
    """The ``av`` module (imported on first use, so that ``import tokbench.data`` works
    without it); a missing PyAV is a :class:`TokbenchError` saying how to install it."""
    try:
        import av
    except ImportError as e:
        raise TokbenchError("decoding videos needs PyAV: pip install av") from e
    return av


def _read_errors() -> tuple[type[BaseException], ...]:
    av = sys.modules.get("av")  # imported by then if a video was opened
    return (OSError, ValueError, RuntimeError, EOFError) + ((av.error.FFmpegError,) if av else ())


@contextlib.contextmanager
def _as_read_error(path: Path) -> Iterator[None]:
    try:
        yield
    except (VideoReadError, TokbenchError):
        raise
    except _read_errors() as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise VideoReadError(path, reason) from e


def _segment(path: Path, start: int, end: int | None) -> Iterator[Any]:
    """Decoded ``av.VideoFrame`` s of ``[start, end)`` of the first video stream, in order."""
    with require_av().open(str(path)) as container:
        if not container.streams.video:
            raise VideoReadError(path, "no video stream")
        stream = container.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate
        if start > 0 and fps and stream.time_base and start / fps >= SEEK_MIN_SECONDS:
            t0 = stream.start_time or 0
            # seek to the keyframe at or before the first frame, then number by timestamp
            container.seek(t0 + int(start / fps / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts is None:
                    raise VideoReadError(path, "frame without a timestamp after seeking")
                n = round(float((frame.pts - t0) * stream.time_base * fps))
                if end is not None and n >= end:
                    return
                if n >= start:
                    yield frame
            return
        for n, frame in enumerate(container.decode(stream)):
            if end is not None and n >= end:
                return
            if n >= start:
                yield frame


def _resolve(path: Path, indices: Indices, total: int) -> list[int]:
    if total < 1:
        raise VideoReadError(path, "no frames decoded")
    idx = [int(i) for i in (indices(total) if callable(indices) else indices)]
    bad = [i for i in idx if not 0 <= i < total]
    if bad:
        raise VideoReadError(path, f"frame {bad[0]} requested but the segment has {total} frames")
    return idx


def _stack(frames: dict[int, np.ndarray], idx: list[int]) -> Tensor:
    return torch.from_numpy(np.stack([frames[i] for i in idx]))


def count_frames(path: str | os.PathLike, *, start_frame: int = 0, end_frame: int | None = None) -> int:
    """Frames in ``[start_frame, end_frame)`` of a video file, counted by decoding."""
    path = Path(path)
    if not path.is_file():
        raise VideoReadError(path, "file not found")
    with _as_read_error(path), contextlib.closing(_segment(path, start_frame, end_frame)) as frames:
        return sum(1 for _ in frames)


def read_video(
    path: str | os.PathLike, indices: Indices, *, start_frame: int = 0, end_frame: int | None = None
) -> Tensor:
    """Frames ``indices`` of the segment ``[start_frame, end_frame)`` of a video file.

    Returns:
        uint8 ``(len(indices), H, W, 3)``, RGB.

    Raises:
        VideoReadError: missing or undecodable file, no video stream, no frames in the
            segment, or an index past the segment's decoded frames.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoReadError(path, "file not found")
    with _as_read_error(path):
        if callable(indices):  # count by decoding, keeping short videos' frames
            kept: list[Any] | None = []
            total = size = 0
            with contextlib.closing(_segment(path, start_frame, end_frame)) as frames:
                for frame in frames:
                    total += 1
                    if kept is not None:
                        size += sum(p.buffer_size for p in frame.planes)
                        if size <= KEEP_BYTES:
                            kept.append(frame)
                        else:
                            kept = None
            idx = _resolve(path, indices, total)
            if kept is not None:
                return _stack({i: kept[i].to_ndarray(format="rgb24") for i in set(idx)}, idx)
        else:
            idx = [int(i) for i in indices]
        wanted, got, total = set(idx), {}, 0
        with contextlib.closing(_segment(path, start_frame, end_frame)) as frames:
            for n, frame in enumerate(frames):
                total = n + 1
                if n in wanted:
                    got[n] = frame.to_ndarray(format="rgb24")
                    if len(got) == len(wanted):
                        break
        if len(got) < len(wanted):
            _resolve(path, idx, total)  # raises with the reason
        return _stack(got, idx)


def read_frame_folder(
    folder: str | os.PathLike,
    indices: Indices,
    *,
    pattern: str,
    first: int = 1,
    start_frame: int = 0,
    end_frame: int | None = None,
) -> Tensor:
    """Frames ``indices`` of the segment ``[start_frame, end_frame)`` of a folder of JPEGs.

    Segment frame ``i`` is the file ``pattern.format(first + start_frame + i)``: Jester's
    ``00001.jpg`` is ``pattern="{:05d}.jpg"``, Epic-Kitchens' ``frame_0000000001.jpg`` is
    ``pattern="frame_{:010d}.jpg"`` (both 1-based: ``first=1``). Without ``end_frame`` the
    frame count is the number of files with the pattern's extension in the folder.

    Returns:
        uint8 ``(len(indices), H, W, 3)``, RGB.

    Raises:
        VideoReadError: missing folder or frame file, an unreadable image, frames of
            different sizes, or an index past the segment.
    """
    from PIL import Image

    folder = Path(folder)
    if not folder.is_dir():
        raise VideoReadError(folder, "frame folder not found")
    with _as_read_error(folder):
        if end_frame is None:
            ext = os.path.splitext(pattern.format(first))[1]
            end_frame = sum(1 for e in os.scandir(folder) if e.name.endswith(ext))
        idx = _resolve(folder, indices, end_frame - start_frame)
        got = {}
        for i in set(idx):
            file = folder / pattern.format(first + start_frame + i)
            if not file.is_file():
                raise VideoReadError(folder, f"missing frame file {file.name}")
            with Image.open(file) as img:
                got[i] = np.asarray(img.convert("RGB"))
        return _stack(got, idx)
