"""Image teachers for LookWhen's pre-training: per-frame patch and frame features.

LookWhen (arXiv 2605.06809) uses DINOv3 as its image teacher. Two kinds plug in here, both
behind :class:`ImageTeacher` (``features(video) -> (patch (B, T, h, w, C), frame (B, T, C))``):

- :class:`ZooImageTeacher`: a small image ViT that tokbench trains on the frames of a
  synthetic dataset (``tokbench train image-teacher``). Objective (chosen, since nothing
  like DINO can be pre-trained on a CPU in minutes): supervised classification of single
  frames with their clip's label. A frame rarely shows the label (it is often in the
  motion), so the teacher learns what the objects that matter look like, which is what
  the uniqueness target and the frame-normalised targets need from it. Architecture: the
  backbone's width and depth on one frame (1 x 8 x 8 patches, CLS token).
- :class:`TimmImageTeacher`: any timm ViT with local weights (DINOv2/DINOv3 for real data):
  ``timm:<model name>:<weights file>``. Frames are resized to the model's input size.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tokbench.backbones.checkpoints import read_state_dict
from tokbench.backbones.vit import VideoViT, VideoViTConfig
from tokbench.benchmark.environment import collect_environment
from tokbench.benchmark.evaluate import evaluate, head_size
from tokbench.data import create_dataset
from tokbench.errors import CheckpointError, TokbenchError
from tokbench.methods import build_method
from tokbench.store import output_file
from tokbench.train.loop import TrainConfig, fit
from tokbench.train.teacher import zoo_teacher
from tokbench.weights import load_weights, read_weights, save_checkpoint
from tokbench.zoo import zoo_artifact

__all__ = ["ImageTeacher", "ZooImageTeacher", "TimmImageTeacher", "load_image_teacher", "image_config",
           "FrameSet", "train_image_teacher"]


def image_config(config, num_classes: int):
    """The zoo image teacher's config for a video backbone: one frame, 1 x p x p patches."""
    return dataclasses.replace(config, num_frames=1, tubelet_size=1, num_classes=num_classes, class_token=True,
                               global_pool="token", drop_path_rate=0.0)


class ImageTeacher(nn.Module):
    """Per-frame features of a clip. Subclasses implement :meth:`frame_tokens`."""

    def frame_tokens(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """(F, C, H, W) frames -> (patch (F, h, w, D), frame (F, D))."""
        raise NotImplementedError

    @torch.no_grad()
    def features(self, video: Tensor, *, batch_frames: int = 512) -> tuple[Tensor, Tensor]:
        """(B, C, T, H, W) normalised clip -> (patch (B, T, h, w, D), frame (B, T, D))."""
        B, C, T, H, W = video.shape
        frames = video.permute(0, 2, 1, 3, 4).reshape(B * T, C, H, W)
        outs = [self.frame_tokens(frames[i : i + batch_frames]) for i in range(0, B * T, batch_frames)]
        patch, frame = torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])
        return patch.reshape(B, T, *patch.shape[1:]), frame.reshape(B, T, -1)


class ZooImageTeacher(ImageTeacher):
    """tokbench's small image ViT (a one-frame :class:`~tokbench.backbones.VideoViT`)."""

    def __init__(self, vit) -> None:
        super().__init__()
        self.vit = vit.eval()

    def frame_tokens(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        tokens = self.vit.encode(frames[:, :, None])
        x = self.vit.norm(tokens.x)
        _, h, w = self.vit.config.grid
        return x[:, 1:].reshape(x.shape[0], h, w, -1), x[:, 0]


class TimmImageTeacher(ImageTeacher):
    """A timm ViT with local weights; patch tokens after the final norm, the CLS token as the frame's."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval()
        self.size = tuple(model.pretrained_cfg.get("input_size", (3, 224, 224))[1:])
        self.prefix = getattr(model, "num_prefix_tokens", 1)
        self.grid = tuple(model.patch_embed.grid_size)

    def frame_tokens(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        if tuple(frames.shape[-2:]) != self.size:
            frames = F.interpolate(frames, size=self.size, mode="bilinear", align_corners=False)
        x = self.model.forward_features(frames)  # (F, prefix + h*w, D), after the final norm
        h, w = self.grid
        return x[:, self.prefix :].reshape(x.shape[0], h, w, -1), x[:, 0]


def load_image_teacher(spec: str, *, dataset: str | None = None) -> ImageTeacher:
    """``"zoo"`` (the shipped teacher of ``dataset``), a tokbench image-teacher file, or
    ``"timm:<model name>:<weights file>"``."""
    if spec.startswith("timm:"):
        try:
            _, name, weights = spec.split(":", 2)
        except ValueError:
            raise TokbenchError(f"image teacher {spec!r}: write timm:<model name>:<weights file>") from None
        import timm

        try:
            model = timm.create_model(name, pretrained=False, num_classes=0)
        except RuntimeError as e:
            raise TokbenchError(f"image teacher: timm has no model {name!r} ({e})") from None
        state = read_state_dict(Path(weights))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing:
            raise CheckpointError(f"{weights} does not fit timm {name}: missing {', '.join(missing[:3])}...")
        return TimmImageTeacher(model)
    if spec == "zoo":
        path = zoo_artifact("image-teacher", dataset)
    else:
        path = Path(spec)
    state, card = read_weights(path, "image teacher", card_keys=("config",))
    vit = VideoViT(VideoViTConfig(**card["config"]))
    return ZooImageTeacher(load_weights(vit, state, mismatch=f"{path} does not fit its card's image teacher"))


class FrameSet(torch.utils.data.Dataset):
    """Single frames of a clip dataset, with their clip's label: (C, 1, H, W) videos.

    ``frames_per_clip`` frames evenly spaced in each clip (the first and last included)."""

    def __init__(self, clips, frames_per_clip: int = 4) -> None:
        self.clips, self.per_clip = clips, frames_per_clip
        T = clips.frames
        self.positions = [round(i * (T - 1) / max(frames_per_clip - 1, 1)) for i in range(frames_per_clip)]
        self.card, self.views, self.missing = clips.card, 1, []
        self.num_classes, self.num_verbs, self.num_nouns = clips.num_classes, clips.num_verbs, clips.num_nouns

    def __len__(self) -> int:
        return len(self.clips) * self.per_clip

    def __getitem__(self, j: int) -> dict[str, Any]:
        i, f = divmod(j, self.per_clip)
        item = dict(self.clips[i])
        t = self.positions[f]
        item.update(video=item["video"][:, t : t + 1], index=j, id=f"{item['id']}-f{t}")
        return item


def train_image_teacher(dataset: str, *, out: str | Path, config=None, frames_per_clip: int = 4,
                        command: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train the zoo's image teacher for ``dataset`` on single frames. Returns the card."""
    import time

    output_file(out, suffix=".safetensors", make=False)  # fail now, not after training
    config = config or TrainConfig(epochs=6, batch_size=64, lr=1e-3, token_drop=0.0, warmup_epochs=0.5)
    card_b, video_model, geometry = zoo_teacher(dataset, trainer="image-teacher")
    torch.manual_seed(config.seed)  # after loading the video model, whose init draws random numbers
    splits = {s: FrameSet(create_dataset(dataset, split=s, **geometry), frames_per_clip) for s in ("train", "val")}
    heads = head_size(splits["train"])
    model = VideoViT(image_config(video_model.config, heads))
    none = build_method("none")
    metric = card_b["metric"]

    def validate(m) -> dict[str, float]:
        return evaluate(m, none, splits["val"], batch_size=256).metrics

    out = Path(out)
    work = out.with_name(out.stem + ".fp32.safetensors")
    card: dict[str, Any] = {
        "kind": "image_teacher", "dataset": dataset, "config": model.config.to_dict(), "metric": metric,
        "objective": "supervised single-frame classification with the clip's label (see tokbench/train/image_teacher.py)",
        "command": command or shlex.join(["tokbench", *sys.argv[1:]]),
        "data": {**geometry, "frames_per_clip": frames_per_clip, "train_frames": len(splits["train"]),
                 "val_frames": len(splits["val"]), "seed": 0},
    }
    t0 = time.perf_counter()
    result = fit(model, splits["train"], validate=validate, metric=metric, out=work, config=config, card=card,
                 forward=lambda m, batch, gen: m(batch["video"]), progress=progress)
    best = load_image_teacher(str(work)).vit  # the best epoch, read as users will read it
    card.update(train=asdict(config), best_epoch=result.best_epoch, history=result.history,
                train_seconds=round(time.perf_counter() - t0, 1), val_frames=validate(best),
                env=collect_environment(torch.device("cpu")))
    save_checkpoint(best, out, card, dtype=torch.float16)
    return card
