"""Test-time frame sampling rules of published evaluation code: pure functions.

Each rule maps the number of frames ``total`` of a video (or of an annotated segment) to
the frame indices of every temporal clip, ``clips`` lists of ``frames`` indices in
``[0, total)``, with the upstream arithmetic kept as it is (float division, ``int()``
truncation, banker's ``round``, ``torch.linspace`` in float32), so that the indices are
the ones the official code reads. Upstream file and function are named in each docstring;
commits are the snapshots read:

===================  =====================================================================
rule                 source
===================  =====================================================================
videomae-kinetics    MCG-NJU/VideoMAE@14ef8d8 ``kinetics.py`` ``VideoClsDataset`` (test)
videomae-ssv2        MCG-NJU/VideoMAE@14ef8d8 ``ssv2.py`` ``SSVideoClsDataset`` (test)
seq-frames           facebookresearch/SlowFast ``ssv2.py:get_seq_frames`` as copied by
                     uark-cviu/DirecFormer@3df1eba ``slowfast/datasets/jester.py`` and
                     taoyang1122/adapt-image-models@b3580d2 ``loading.py:SampleFrames``
motionformer-epic    facebookresearch/Motionformer@bf43d50 ``frame_loader.py``
slowfast-charades    facebookresearch/SlowFast@287ec00 ``charades.py:get_seq_frames``
segments             tokbench's own rule (:func:`tokbench.data.views.temporal_indices`)
===================  =====================================================================

Every rule raises :class:`~tokbench.errors.TokbenchError` for arguments it cannot use
(no frames, a stride < 1, a number of clips its upstream code cannot produce).
"""

from __future__ import annotations

import torch

from tokbench.data.views import temporal_indices
from tokbench.errors import TokbenchError

__all__ = [
    "videomae_kinetics", "videomae_ssv2", "seq_frames", "motionformer_epic", "slowfast_charades", "segments",
    "epic_fps", "SAMPLERS",
]


def _check(total: int, frames: int, clips: int, stride: int = 1) -> None:
    if total < 1:
        raise TokbenchError("cannot sample frames from a video with no frames")
    if frames < 1 or clips < 1 or stride < 1:
        raise TokbenchError(f"frames, clips and stride must be >= 1, got {frames}, {clips} and {stride}")


def videomae_kinetics(total: int, *, frames: int = 16, stride: int = 4, clips: int = 5) -> list[list[int]]:
    """VideoMAE's Kinetics test views: ``clips`` windows of ``frames`` consecutive frames of
    the video subsampled every ``stride`` frames.

    MCG-NJU/VideoMAE ``kinetics.py``, ``VideoClsDataset`` in mode ``test``:
    ``loadvideo_decord`` takes ``all_index = range(0, len(vr), frame_sample_rate)`` and
    repeats its last index until there are ``clip_len``; ``__getitem__`` cuts window
    ``chunk_nb`` at ``temporal_start = int(chunk_nb * temporal_step)`` with
    ``temporal_step = max(1.0 * (len(sampled) - clip_len) / (test_num_segment - 1), 0)``.
    K400: ``clip_len=16``, ``frame_sample_rate=4``, ``test_num_segment=5``.

    >>> videomae_kinetics(40, frames=4, stride=4, clips=3)
    [[0, 4, 8, 12], [12, 16, 20, 24], [24, 28, 32, 36]]

    Raises:
        TokbenchError: ``clips < 2`` (upstream divides by ``test_num_segment - 1``).
    """
    _check(total, frames, clips, stride)
    if clips < 2:
        raise TokbenchError(f"videomae-kinetics sampling needs at least 2 temporal clips, got {clips} "
                            "(VideoMAE's kinetics.py divides by test_num_segment - 1)")
    sampled = list(range(0, total, stride))
    while len(sampled) < frames:  # a short video repeats its last sampled frame
        sampled.append(sampled[-1])
    step = max(1.0 * (len(sampled) - frames) / (clips - 1), 0)
    return [sampled[int(c * step): int(c * step) + frames] for c in range(clips)]


def videomae_ssv2(total: int, *, frames: int = 16, clips: int = 2) -> list[list[int]]:
    """VideoMAE's Something-Something v2 test views: both clips span the whole video.

    MCG-NJU/VideoMAE ``ssv2.py``, ``SSVideoClsDataset.loadvideo_decord`` in mode ``test``
    (``num_segment=16``, ``test_num_segment=2``): ``tick = len(vr) / float(num_segment)``;
    the segment centres ``int(tick / 2.0 + tick * x)`` and starts ``int(tick * x)`` are
    concatenated (duplicates kept), padded with the last index up to ``num_segment *
    test_num_segment`` and sorted; ``__getitem__`` gives clip ``chunk_nb`` the frames
    ``buffer[chunk_nb::2]``. Clip 0 holds the starts, clip 1 the centres.

    >>> videomae_ssv2(8, frames=4)
    [[0, 2, 4, 6], [1, 3, 5, 7]]

    Raises:
        TokbenchError: ``clips != 2`` (upstream slices every second frame, so it makes
            exactly two clips of ``num_segment`` frames).
    """
    _check(total, frames, clips)
    if clips != 2:
        raise TokbenchError(f"videomae-ssv2 sampling makes exactly 2 temporal clips, got {clips} "
                            "(VideoMAE's ssv2.py takes every second sampled frame)")
    tick = total / float(frames)
    index = [int(tick / 2.0 + tick * x) for x in range(frames)] + [int(tick * x) for x in range(frames)]
    while len(index) < frames * clips:
        index.append(index[-1])
    index.sort()
    return [index[c::2] for c in range(clips)]


def seq_frames(total: int, *, frames: int = 16, clips: int = 1) -> list[list[int]]:
    """One clip of ``frames`` frames, each the middle of one of ``frames`` equal parts.

    SlowFast's ``ssv2.py:get_seq_frames`` in test mode, as uark-cviu/DirecFormer
    ``slowfast/datasets/jester.py:Jester.get_seq_frames`` and taoyang1122/adapt-image-models
    ``mmaction/datasets/pipelines/loading.py:SampleFrames.get_seq_frames``
    (``frame_uniform=True, test_mode=True``) use it: ``seg_size = float(total - 1) /
    frames``; frame i is ``(start + end) // 2`` with ``start = int(np.round(seg_size *
    i))``, ``end = int(np.round(seg_size * (i + 1)))`` (round half to even, like
    Python's ``round``).

    >>> seq_frames(9, frames=4)
    [[1, 3, 5, 7]]

    Raises:
        TokbenchError: ``clips != 1`` (the rule has one temporal view).
    """
    _check(total, frames, clips)
    if clips != 1:
        raise TokbenchError(f"seq-frames sampling makes 1 temporal clip, got {clips}")
    seg = float(total - 1) / frames
    return [[(int(round(seg * i)) + int(round(seg * (i + 1)))) // 2 for i in range(frames)]]


def epic_fps(sample_id: str) -> int:
    """Frame rate Motionformer assumes for an EPIC-KITCHENS-100 segment: 50 for the
    extension videos (3-digit video number, ``P01_101``), else 60
    (``epickitchens_record.py:EpicKitchensVideoRecord.fps``). ``sample_id`` is a narration
    id ``<participant>_<video>_<n>`` or a video id."""
    parts = sample_id.split("_")
    return 50 if len(parts) > 1 and len(parts[1]) == 3 else 60


def motionformer_epic(total: int, *, frames: int = 16, stride: int = 4, clips: int = 10, fps: float = 60,
                      target_fps: float = 30) -> list[list[int]]:
    """Motionformer's EPIC-KITCHENS test views: ``clips`` windows spanning ``frames *
    stride`` frames at ``target_fps``, evenly placed over the segment.

    facebookresearch/Motionformer ``slowfast/datasets/frame_loader.py``
    (``pack_frames_to_video_clip``, ``temporal_sampling``) with ``decoder.py:
    get_start_end_idx``: ``clip_size = frames * stride * fps / target_fps``; ``delta =
    max(total - clip_size, 0)``; ``start = delta * c / clips`` (not ``clips - 1``: the
    last window stops short of the end); ``end = start + clip_size - 1``; indices
    ``torch.linspace(start + 1, end + 1, frames)`` clamped to ``[0, total - 1]`` and
    truncated by ``.long()``. Upstream reads frame file ``start_frame + index`` (1-based
    files), so with ``start_frame`` = the annotation's first frame these are offsets into
    the segment. Config ``configs/EK/motionformer_224_16x4.yaml``: 16 frames, stride 4,
    ``NUM_ENSEMBLE_VIEWS: 10``; ``DATA.TARGET_FPS`` 30 (defaults.py).

    >>> motionformer_epic(100, frames=4, stride=4, clips=2, fps=30)
    [[1, 6, 11, 16], [43, 48, 53, 58]]
    """
    _check(total, frames, clips, stride)
    if fps <= 0 or target_fps <= 0:
        raise TokbenchError(f"fps and target_fps must be > 0, got {fps} and {target_fps}")
    clip_size = frames * stride * fps / target_fps
    delta = max(total - clip_size, 0)
    out = []
    for c in range(clips):
        start = delta * c / clips
        end = start + clip_size - 1
        index = torch.linspace(start + 1, end + 1, frames)  # float32, as upstream
        out.append(torch.clamp(index, 0, total - 1).long().tolist())
    return out


def slowfast_charades(total: int, *, frames: int = 16, stride: int = 4, clips: int = 10) -> list[list[int]]:
    """SlowFast's Charades test views: ``clips`` windows of ``frames`` frames ``stride``
    apart, evenly placed from the first frame to the last.

    facebookresearch/SlowFast ``slowfast/datasets/charades.py:Charades.get_seq_frames``:
    ``clip_length = (frames - 1) * stride + 1``; ``gap = float(max(total - clip_length,
    0)) / (NUM_ENSEMBLE_VIEWS - 1)``; ``start = int(round(gap * c))``; frame i is
    ``max(min(start + i * stride, total - 1), 0)`` (a short video repeats its last frame).

    >>> slowfast_charades(20, frames=4, stride=2, clips=3)
    [[0, 2, 4, 6], [6, 8, 10, 12], [13, 15, 17, 19]]

    Raises:
        TokbenchError: ``clips < 2`` (upstream divides by ``NUM_ENSEMBLE_VIEWS - 1``).
    """
    _check(total, frames, clips, stride)
    if clips < 2:
        raise TokbenchError(f"slowfast-charades sampling needs at least 2 temporal clips, got {clips} "
                            "(SlowFast's charades.py divides by NUM_ENSEMBLE_VIEWS - 1)")
    clip_length = (frames - 1) * stride + 1
    gap = float(max(total - clip_length, 0)) / (clips - 1)
    out = []
    for c in range(clips):
        start = int(round(gap * c))
        out.append([max(min(start + i * stride, total - 1), 0) for i in range(frames)])
    return out


def segments(total: int, *, frames: int = 16, clips: int = 1) -> list[list[int]]:
    """tokbench's own rule: ``clips`` equal segments, ``frames`` segment-part centres in
    each (:func:`tokbench.data.views.temporal_indices`)."""
    return temporal_indices(total, frames, clips)


#: rule name -> (function, whether it takes ``stride``).
SAMPLERS = {
    "videomae-kinetics": (videomae_kinetics, True),
    "videomae-ssv2": (videomae_ssv2, False),
    "seq-frames": (seq_frames, False),
    "motionformer-epic": (motionformer_epic, True),
    "slowfast-charades": (slowfast_charades, True),
    "segments": (segments, False),
}
