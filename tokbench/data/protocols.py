"""Evaluation protocols: named, documented test-time view rules of published code.

A :class:`Protocol` says how a real video becomes the V = ``temporal_clips x
spatial_crops`` views a model sees and how their outputs become one prediction: a frame
sampling rule (:mod:`tokbench.data.sampling`), a resize and crop rule
(:mod:`tokbench.data.spatial`), and a view aggregation
(:func:`tokbench.data.metrics.merge_views`). Every real dataset has a default protocol
that follows the evaluation code of a paper reporting on it with a ViT video backbone;
any protocol can be picked for any real dataset and its frames, stride, views and
aggregation changed::

    create_dataset("ssv2", split="val", root=..., protocol="videomae-ssv2")      # the default
    create_dataset("kinetics400", split="val", root=..., temporal_clips=2, stride=2)
    create_dataset("charades", split="test", root=..., protocol="tokbench-segments")

The synthetic suite keeps its own protocol (``synthetic``: one generated clip, logits).
Normalisation is not part of a protocol: it belongs to the backbone (tokbench's VideoMAE
backbones take ImageNet mean/std). A protocol's ``params()`` (everything that decides the
views) go into records and cell ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor

from tokbench.data.metrics import AGGREGATIONS, check_aggregation
from tokbench.data.sampling import SAMPLERS, epic_fps
from tokbench.data.spatial import RULES, crop_offsets, crop_views, resize_clip
from tokbench.data.views import normalize
from tokbench.errors import TokbenchError
from tokbench.registry import Registry

__all__ = ["Protocol", "PROTOCOLS", "get_protocol", "OPTION_NAMES", "SYNTHETIC"]

#: What a user may change on a named protocol (dataset options; CLI --eval-*).
OPTION_NAMES = ("frames", "size", "stride", "temporal_clips", "spatial_crops", "aggregation")


@dataclass(frozen=True)
class Protocol:
    """A test-time view protocol.

    Attributes:
        name: registered name (``videomae-k400``); kept when options change it.
        sampling: frame rule, a key of :data:`tokbench.data.sampling.SAMPLERS`.
        spatial: resize and crop rule, one of :data:`tokbench.data.spatial.RULES`.
        aggregation: view aggregation, one of :data:`tokbench.data.metrics.AGGREGATIONS`.
        frames: frames per clip (the backbone's clip length).
        size: short side after resizing = crop size.
        stride: frame stride of strided rules; ``None`` for rules without one.
        temporal_clips, spatial_crops: views are clip-major: view ``v = clip * crops + crop``.
        target_fps: frame rate the window is defined at (``motionformer-epic``), else None.
        source: repository, file, function and arguments the protocol follows.
    """

    name: str
    sampling: str
    spatial: str
    aggregation: str
    frames: int = 16
    size: int = 224
    stride: int | None = None
    temporal_clips: int = 1
    spatial_crops: int = 1
    target_fps: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLERS:
            raise TokbenchError(f"protocol {self.name!r}: unknown sampling {self.sampling!r}; rules: {', '.join(SAMPLERS)}")
        if self.spatial not in RULES:
            raise TokbenchError(f"protocol {self.name!r}: unknown spatial rule {self.spatial!r}; rules: {', '.join(RULES)}")
        if self.aggregation not in AGGREGATIONS:
            raise TokbenchError(f"protocol {self.name!r}: aggregation must be one of {', '.join(AGGREGATIONS)}, "
                                f"got {self.aggregation!r}")
        for key in ("frames", "size", "temporal_clips", "spatial_crops"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TokbenchError(f"protocol {self.name!r}: {key} must be an integer >= 1, got {value!r}")
        strided = SAMPLERS[self.sampling][1]
        if strided and (isinstance(self.stride, bool) or not isinstance(self.stride, int) or self.stride < 1):
            raise TokbenchError(f"protocol {self.name!r}: stride must be an integer >= 1 (frames between sampled "
                                f"frames), got {self.stride!r}")
        if not strided and self.stride is not None:
            raise TokbenchError(f"protocol {self.name!r} has no stride: its {self.sampling} rule spreads the "
                                f"{self.frames} frames over the whole video; leave stride out")
        # Views the rules cannot produce fail here, not at the first video.
        try:
            self.frame_indices(self.frames * (self.stride or 1) * 4)
        except TokbenchError as e:
            raise TokbenchError(f"protocol {self.name!r} cannot make temporal_clips={self.temporal_clips}: {e}") from None
        try:
            crop_offsets(self.size, self.size * 2, self.size, self.spatial_crops, self.spatial)
        except TokbenchError as e:
            raise TokbenchError(f"protocol {self.name!r} cannot make spatial_crops={self.spatial_crops}: {e}") from None

    @property
    def views(self) -> int:
        return self.temporal_clips * self.spatial_crops

    def params(self) -> dict[str, Any]:
        """Everything that decides the views and their merging (records, cell ids)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "source"}

    def with_options(self, **options: Any) -> Protocol:
        """This protocol with some of :data:`OPTION_NAMES` changed (``None`` keeps one).

        Raises:
            TokbenchError: an unknown option, or values the rules cannot use.
        """
        unknown = sorted(set(options) - set(OPTION_NAMES))
        if unknown:
            raise TokbenchError(f"protocol {self.name!r} has no option {unknown[0]!r}; options: {', '.join(OPTION_NAMES)}")
        changed = {k: v for k, v in options.items() if v is not None}
        return replace(self, **changed) if changed else self

    def frame_indices(self, total: int, sample_id: str = "") -> list[list[int]]:
        """``temporal_clips`` lists of ``frames`` indices into a video (segment) of
        ``total`` frames; ``sample_id`` gives ``motionformer-epic`` its frame rate."""
        fn, strided = SAMPLERS[self.sampling]
        kw: dict[str, Any] = {"frames": self.frames, "clips": self.temporal_clips}
        if strided:
            kw["stride"] = self.stride
        if self.sampling == "motionformer-epic":
            kw.update(fps=epic_fps(sample_id), target_fps=self.target_fps or 30)
        return fn(total, **kw)

    def to_views(self, clips: Sequence[Tensor]) -> Tensor:
        """Decoded clips (each uint8 (T, H, W, 3), one per temporal clip) -> normalised
        views, (C, T, S, S) for one view or (V, C, T, S, S), clip-major then crop."""
        if len(clips) != self.temporal_clips:
            raise TokbenchError(f"protocol {self.name!r} expects {self.temporal_clips} decoded clip(s), got {len(clips)}")
        views = []
        for clip in clips:
            frames = resize_clip(clip, self.size, self.spatial)
            views += [normalize(c.contiguous()) for c in crop_views(frames, self.size, self.spatial_crops, self.spatial)]
        return views[0] if len(views) == 1 else torch.stack(views)

    def check_task(self, task: str, dataset: str) -> None:
        """Raises TokbenchError if the aggregation does not suit ``task``."""
        check_aggregation(self.aggregation, task, where=f"protocol {self.name!r} on {dataset}")

    def describe(self) -> str:
        """One line: the rules and views, for `tokbench ls`."""
        stride = f", stride {self.stride}" if self.stride is not None else ""
        return (f"{self.temporal_clips}x{self.spatial_crops} views, {self.sampling} sampling{stride}, "
                f"{self.spatial} resize/crops, {self.aggregation} aggregation")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROTOCOLS: Registry[Protocol] = Registry("evaluation protocol")


def _register(p: Protocol) -> Protocol:
    PROTOCOLS.register(p.name, p)
    return p


def get_protocol(name: str, **options: Any) -> Protocol:
    """A registered protocol, with ``options`` (:data:`OPTION_NAMES`) changed.

    Raises:
        UnknownNameError: unknown name (with suggestions). TokbenchError: bad options.
    """
    return PROTOCOLS.get(name).with_options(**options)


_VIDEOMAE = "MCG-NJU/VideoMAE@14ef8d8"

VIDEOMAE_K400 = _register(Protocol(
    name="videomae-k400", sampling="videomae-kinetics", spatial="videomae", aggregation="softmax",
    stride=4, temporal_clips=5, spatial_crops=3,
    source=f"{_VIDEOMAE} kinetics.py VideoClsDataset(mode='test') loadvideo_decord + __getitem__, built by "
           "datasets.py build_dataset('Kinetics-400', test_mode=True) with the arguments of "
           "scripts/kinetics/videomae_vit_base_patch16_224_tubemasking_ratio_0.9_epoch_1600/finetune.sh "
           "(--num_frames 16 --sampling_rate 4 --input_size 224 --short_side_size 224 --test_num_segment 5 "
           "--test_num_crop 3); views merged by engine_for_finetuning.py merge/compute_video (mean of softmax)",
))
VIDEOMAE_SSV2 = _register(Protocol(
    name="videomae-ssv2", sampling="videomae-ssv2", spatial="videomae", aggregation="softmax",
    temporal_clips=2, spatial_crops=3,
    source=f"{_VIDEOMAE} ssv2.py SSVideoClsDataset(mode='test') loadvideo_decord + __getitem__, built by "
           "datasets.py build_dataset('SSV2', test_mode=True) (clip_len=1, num_segment=num_frames) with the "
           "arguments of scripts/ssv2/videomae_vit_base_patch16_224_tubemasking_ratio_0.9_epoch_2400/finetune.sh "
           "(--num_frames 16 --input_size 224 --short_side_size 224 --test_num_segment 2 --test_num_crop 3); "
           "views merged by engine_for_finetuning.py merge/compute_video (mean of softmax)",
))
AIM_DIVING48 = _register(Protocol(
    name="aim-diving48", sampling="seq-frames", spatial="mmaction", aggregation="softmax",
    temporal_clips=1, spatial_crops=3,
    source="taoyang1122/adapt-image-models@b3580d2 (AIM, Yang et al., ICLR 2023, ViT-B/16 CLIP: Diving-48 88.9) "
           "configs/recognition/vit/vitclip_base_diving48.py test_pipeline: SampleFrames(clip_len=32, num_clips=1, "
           "frame_uniform=True, test_mode=True) -> mmaction/datasets/pipelines/loading.py "
           "SampleFrames.get_seq_frames, Resize(scale=(-1, 224)), ThreeCrop(crop_size=224); "
           "configs/_base_/models/vitclip_base.py test_cfg average_clips='prob' (mean of softmax). "
           "AIM's README lists the Diving-48 result as 32x1x1 views, its test config takes 3 crops: "
           "tokbench follows the config",
))
DIRECFORMER_JESTER = _register(Protocol(
    name="direcformer-jester", sampling="seq-frames", spatial="slowfast", aggregation="logits",
    temporal_clips=1, spatial_crops=3,
    source="uark-cviu/DirecFormer@3df1eba (Truong et al., CVPR 2022, TimeSformer ViT-B) configs/Jester/DirecFormer.yaml "
           "(TEST.NUM_ENSEMBLE_VIEWS 1, NUM_SPATIAL_CROPS 3, TEST_CROP_SIZE 224), slowfast/datasets/jester.py "
           "Jester.get_seq_frames + utils.spatial_sampling (short side 224, uniform_crop), tools/test_net_tsm.py "
           "TestMeter(ensemble_method DATA.ENSEMBLE_METHOD='sum') over the head's logits",
))
MOTIONFORMER_EPIC = _register(Protocol(
    name="motionformer-epic", sampling="motionformer-epic", spatial="slowfast", aggregation="softmax",
    stride=4, temporal_clips=10, spatial_crops=3, target_fps=30,
    source="facebookresearch/Motionformer@bf43d50 (Patrick et al., NeurIPS 2021, ViT-B) "
           "configs/EK/motionformer_224_16x4.yaml (NUM_FRAMES 16, SAMPLING_RATE 4, TEST_CROP_SIZE 224, "
           "TEST.NUM_ENSEMBLE_VIEWS 10, NUM_SPATIAL_CROPS 3), slowfast/datasets/frame_loader.py "
           "pack_frames_to_video_clip (DATA.TARGET_FPS 30, fps 50/60 from the video id), epickitchens.py "
           "spatial_sampling; verb and noun heads softmaxed at eval (video_model_builder.py) and summed over "
           "views (meters.py EPICTestMeter)",
))
SLOWFAST_CHARADES = _register(Protocol(
    name="slowfast-charades", sampling="slowfast-charades", spatial="slowfast", aggregation="sigmoid-max",
    stride=4, temporal_clips=10, spatial_crops=3,
    source="facebookresearch/SlowFast@287ec00, the code of MViT (Fan et al., ICCV 2021, Charades mAP): "
           "slowfast/datasets/charades.py Charades.get_seq_frames + utils.spatial_sampling; views and "
           "aggregation from configs/Charades/SLOWFAST_16x8_R50.yaml (TEST.NUM_ENSEMBLE_VIEWS 10, "
           "NUM_SPATIAL_CROPS 3, MODEL.HEAD_ACT sigmoid, DATA.ENSEMBLE_METHOD max, MULTI_LABEL True); "
           "stride 4 as MViT-B 16x4 (the MViT Charades config itself is not published)",
))
TOKBENCH_SEGMENTS = _register(Protocol(
    name="tokbench-segments", sampling="segments", spatial="tokbench", aggregation="logits",
    source="tokbench's rule before named protocols (tokbench.data.views): temporal_clips equal segments, "
           "frames centred in each; antialiased resize; crops at the start, centre and end of the long side; "
           "mean of logits",
))

#: The synthetic suite's protocol: one generated clip per sample, logits (views = 1).
SYNTHETIC = "synthetic"
