"""``create_backbone``: a registered variant, optional overrides, optional weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tokbench.backbones.checkpoints import config_overrides_from_checkpoint, load_checkpoint
from tokbench.backbones.variants import BACKBONES
from tokbench.backbones.vit import VideoViT, VideoViTConfig
from tokbench.errors import TokbenchError

__all__ = ["create_backbone", "resolve_config"]


def resolve_config(
    name: str, *, checkpoint: str | Path | None = None, num_classes: int | None = None, **overrides: Any
) -> VideoViTConfig:
    """The config ``create_backbone`` would build, without building it.

    Precedence: the variant, then a Hugging Face ``config.json`` next to the checkpoint
    (geometry, width, depth, classes), then ``num_classes`` and ``overrides``. ``None``
    values are ignored, so unset CLI options keep the variant's defaults.
    """
    config = BACKBONES.get(name)
    if checkpoint is not None:
        config = _replace(config, config_overrides_from_checkpoint(checkpoint), source=str(checkpoint))
    given = {k: v for k, v in {**overrides, "num_classes": num_classes}.items() if v is not None}
    return _replace(config, given, source="arguments")


def _replace(config: VideoViTConfig, changes: dict[str, Any], *, source: str) -> VideoViTConfig:
    unknown = sorted(set(changes) - set(VideoViTConfig.field_names()))
    if unknown:
        raise TokbenchError(
            f"unknown backbone option {', '.join(map(repr, unknown))} from {source}; "
            f"valid: {', '.join(VideoViTConfig.field_names())}"
        )
    return dataclasses.replace(config, **changes)


def create_backbone(
    name: str, *, checkpoint: str | Path | None = None, num_classes: int | None = None, **overrides: Any
) -> VideoViT:
    """Build a registered backbone, optionally loading weights.

    Args:
        name: a registered variant (``videomae_s``, ``videomae_b``, ``videomae_l``, ``test_tiny``).
        checkpoint: a VideoMAE checkpoint in the original layout (``.pth``/``.pt``/``.bin``/
            ``.safetensors``, possibly wrapped in ``model``/``module``), a Hugging Face
            ``VideoMAEForVideoClassification`` weights file, or a Hugging Face model folder
            with ``config.json`` (whose geometry, width, depth and classes are used).
        num_classes: head size; defaults to the variant's (or the HF config's).
        **overrides: any :class:`VideoViTConfig` field (``attn_impl="explicit"``, ...).

    Returns:
        The model in eval mode.

    Raises:
        UnknownNameError: unknown variant. CheckpointError: missing, unreadable or
        mismatching weights (the message names the keys and shapes).
    """
    config = resolve_config(name, checkpoint=checkpoint, num_classes=num_classes, **overrides)
    model = VideoViT(config)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, name=name)
    return model.eval()
