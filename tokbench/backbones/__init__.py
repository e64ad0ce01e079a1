"""Backbones: the shared ``VideoViT``, its registered variants and checkpoint loading."""

from tokbench.backbones.factory import create_backbone, resolve_config
from tokbench.backbones.variants import BACKBONES
from tokbench.backbones.vit import TubeletEmbed, VideoViT, VideoViTConfig, sincos_table

__all__ = [
    "BACKBONES", "TubeletEmbed", "VideoViT", "VideoViTConfig", "create_backbone",
    "resolve_config", "sincos_table",
]
