"""Loading VideoMAE weights into :class:`~tokbench.backbones.vit.VideoViT`.

Three key layouts are read, told apart by their keys:

* **VideoMAE original** (MCG-NJU/VideoMAE ``modeling_finetune.py``): timm-style names, but
  the attention keeps separate ``attn.q_bias`` / ``attn.v_bias`` (the key bias is fixed at
  zero: ``F.linear(x, qkv.weight, cat(q_bias, 0, v_bias))``) and LayerScale is
  ``gamma_1`` / ``gamma_2``. The sin-cos position table is not a parameter, so fine-tuned
  state dicts have no ``pos_embed`` unless learned embeddings were used.
* **Hugging Face** ``VideoMAEForVideoClassification`` (transformers
  ``models/videomae/modeling_videomae.py``; converted from the original by
  ``convert_videomae_to_pytorch.py``): BERT-style names, separate ``query`` / ``key`` /
  ``value`` linears without a key bias. Checkpoints written by transformers 4.x keep the
  original ``q_bias`` / ``v_bias`` parameters; transformers 5 stores them as
  ``query.bias`` / ``value.bias`` (its ``conversion_mapping.py`` renames the old ones).
  Both are read. The position table is again fixed and not saved.
* **tokbench**: keys already equal ``model.state_dict()``.

Files may be ``.safetensors`` or torch pickles (``.pth``/``.pt``/``.bin``/``.ckpt``, read
with ``weights_only=True``), optionally wrapped in ``{"model"|"module"|"state_dict": ...}``
and with a common ``module.``/``model.``/``encoder.``/``backbone.`` key prefix. A
directory is read as a Hugging Face model folder (``model.safetensors`` or
``pytorch_model.bin``, plus ``config.json``, which :func:`config_overrides_from_checkpoint`
turns into backbone config fields).

Loading is strict: every problem raises :class:`~tokbench.errors.CheckpointError` with a
one-line message that lists missing, unknown and mis-shaped keys.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from tokbench.errors import CheckpointError
from tokbench.weights import regular_file

if TYPE_CHECKING:
    from tokbench.backbones.vit import VideoViT

__all__ = ["config_overrides_from_checkpoint", "load_checkpoint", "read_state_dict", "to_tokbench_keys",
           "regular_file"]

_TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
_HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_WRAPPERS = ("model", "module", "state_dict")
_PREFIXES = ("module.", "model.", "encoder.", "backbone.")
_SHOWN = 3  # names listed per problem kind in an error message

# Hugging Face VideoMAE module path -> tokbench module path (the parameter name, ``weight``
# or ``bias``, is kept). The ``query``/``key``/``value`` linears are merged separately.
_HF_MODULES = {
    "videomae.embeddings.patch_embeddings.projection": "patch_embed.proj",
    "fc_norm": "fc_norm",
    "classifier": "head",
}
_HF_LAYER_MODULES = {  # inside videomae.encoder.layer.{i}
    "layernorm_before": "norm1",
    "attention.output.dense": "attn.proj",
    "layernorm_after": "norm2",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",  # the MLP's second linear, not attention.output.dense
}
_HF_DEFAULTS = {  # transformers VideoMAEConfig defaults, for keys a config.json leaves out
    "image_size": 224, "patch_size": 16, "num_channels": 3, "num_frames": 16, "tubelet_size": 2,
    "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "intermediate_size": 3072, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
    "use_mean_pooling": True,
}
#: The type of every config.json field tokbench reads: "int" (at least the bound given),
#: "size" (an int or a square [n, n]), "eps" (a finite number > 0), "bool", "str". A field
#: of the wrong type ("768", 0, "big", "ten") is one CheckpointError naming it, never a
#: TypeError or ZeroDivisionError further on.
_HF_TYPES = {
    "model_type": ("str",), "hidden_act": ("str",), "use_mean_pooling": ("bool",),
    "qv_bias": ("bool",), "qkv_bias": ("bool",), "layer_norm_eps": ("eps",),
    "image_size": ("size", 1), "patch_size": ("size", 1),
    "num_channels": ("int", 1), "num_frames": ("int", 1), "tubelet_size": ("int", 1),
    "hidden_size": ("int", 1), "num_hidden_layers": ("int", 1), "num_attention_heads": ("int", 1),
    "intermediate_size": ("int", 1), "num_labels": ("int", 0),
}
#: Larger sizes are not a model anyone has (and overflow torch's int64 shapes when multiplied).
_HF_MAX_INT = 2**20
_HF_FC_NORM_EPS = 1e-5  # VideoMAEForVideoClassification.fc_norm is nn.LayerNorm(hidden_size)
_MEAN_POOLING_ONLY = (
    "only mean pooling is supported (use_mean_pooling=False pools the first patch token)"
)


# --------------------------------------------------------------------------- config


def config_overrides_from_checkpoint(checkpoint: str | Path) -> dict[str, Any]:
    """:class:`VideoViTConfig` fields that the checkpoint itself determines.

    For a Hugging Face model folder (a directory with a ``config.json`` of
    ``model_type`` ``"videomae"``): geometry, width, depth, heads, MLP ratio, q/v bias,
    LayerNorm eps (blocks from ``layer_norm_eps``; ``fc_norm`` uses the
    ``nn.LayerNorm`` default 1e-5 in transformers), classes (``len(id2label)``), and
    ``class_token=False``, ``global_pool="avg"``, ``init_values=None`` (HF VideoMAE has
    neither a CLS token nor LayerScale). For anything else, ``{}``: the variant defines
    the geometry and :func:`load_checkpoint` reports mismatches.

    Raises:
        CheckpointError: missing path, a folder with neither ``config.json`` nor weights,
            unreadable or unsupported ``config.json``.
    """
    path = _existing(checkpoint)
    config_file = path / "config.json"
    if path.is_dir() and not config_file.is_file() and not any((path / n).is_file() for n in _HF_WEIGHT_FILES):
        raise CheckpointError(f"checkpoint folder {path} has no config.json, {' or '.join(_HF_WEIGHT_FILES)}: "
                              "give a weights file or a Hugging Face model folder")
    if not (path.is_dir() and config_file.is_file()):
        return {}
    try:
        cfg = json.loads(regular_file(config_file, "checkpoint config").read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {config_file}: {_reason(e)}") from None
    if not isinstance(cfg, dict) or cfg.get("model_type") != "videomae":
        found = cfg.get("model_type") if isinstance(cfg, dict) else None
        raise CheckpointError(f"{config_file}: model_type {found!r} is not supported (expected 'videomae')")
    cfg = {**_HF_DEFAULTS, **cfg}
    for key, kind in _HF_TYPES.items():
        if key in cfg:
            _check_field(config_file, key, cfg[key], *kind)
    if cfg.get("id2label") is not None and not isinstance(cfg["id2label"], dict):
        raise CheckpointError(f"{config_file}: id2label must be an object mapping class ids to names, "
                              f"got {json.dumps(cfg['id2label'])}")
    if cfg["hidden_act"] != "gelu":
        raise CheckpointError(f"{config_file}: hidden_act {cfg['hidden_act']!r} is not supported (only 'gelu')")
    if not cfg["use_mean_pooling"]:
        raise CheckpointError(f"{config_file}: {_MEAN_POOLING_ONLY}")
    hidden, inter = cfg["hidden_size"], cfg["intermediate_size"]  # ints >= 1 (checked above)
    mlp_ratio = inter / hidden
    if int(hidden * mlp_ratio) != inter:
        raise CheckpointError(f"{config_file}: intermediate_size {inter} is not representable as hidden_size * mlp_ratio")
    overrides = {
        "img_size": _square(cfg["image_size"], "image_size", config_file),
        "patch_size": _square(cfg["patch_size"], "patch_size", config_file),
        "in_chans": cfg["num_channels"],
        "num_frames": cfg["num_frames"],
        "tubelet_size": cfg["tubelet_size"],
        "embed_dim": hidden,
        "depth": cfg["num_hidden_layers"],
        "num_heads": cfg["num_attention_heads"],
        "mlp_ratio": mlp_ratio,
        # transformers 5 writes qv_bias; 4.x wrote qkv_bias (same meaning: q and v biases)
        "qkv_bias": bool(cfg.get("qv_bias", cfg.get("qkv_bias", True))),
        "init_values": None,
        "class_token": False,
        "global_pool": "avg",
        "norm_eps": float(cfg["layer_norm_eps"]),
        "fc_norm_eps": _HF_FC_NORM_EPS,
    }
    if isinstance(cfg.get("id2label"), dict):
        overrides["num_classes"] = len(cfg["id2label"])
    elif "num_labels" in cfg:
        overrides["num_classes"] = cfg["num_labels"]
    return overrides


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_field(source: Path, key: str, value: Any, kind: str, low: int = 1) -> None:
    """Refuse a config.json field that is not of its type in :data:`_HF_TYPES`."""
    if kind == "str":
        ok, want = isinstance(value, str), "a string"
    elif kind == "bool":
        ok, want = isinstance(value, bool), "true or false"
    elif kind == "eps":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
        want = "a finite number > 0"
    else:
        want = f"an integer in {low}..{_HF_MAX_INT}" + (" (or a square [n, n])" if kind == "size" else "")
        items = value if kind == "size" and isinstance(value, list) and len(value) == 2 else [value]
        ok = all(_is_int(v) and low <= v <= _HF_MAX_INT for v in items)
    if not ok:
        raise CheckpointError(f"{source}: {key} must be {want}, got {json.dumps(value)}")  # as written in the file


def _square(value: Any, name: str, source: Path) -> int:
    """An int, or a square [n, n] (checked by _check_field) as n."""
    if isinstance(value, list):
        if value[0] != value[1]:
            raise CheckpointError(f"{source}: {name} {value} is not square; only square sizes are supported")
        value = value[0]
    return value


# --------------------------------------------------------------------------- loading


def load_checkpoint(model: VideoViT, checkpoint: str | Path, *, name: str | None = None) -> None:
    """Load VideoMAE weights (any layout above) into ``model`` in place, strictly.

    ``name`` is the backbone variant, used in error messages.

    Raises:
        CheckpointError: missing or unreadable file, unsupported layout, or keys/shapes
            that do not fit ``model`` (one line naming them).
    """
    path = _existing(checkpoint)
    state, layout = to_tokbench_keys(read_state_dict(path))
    target = model.state_dict()
    state = _drop_fixed_pos_embed(state, model, path)
    problems = _compare(state, target)
    if problems:
        c = model.config
        backbone = f"backbone {name}" if name else "backbone"
        raise CheckpointError(
            f"checkpoint {path} ({layout} layout) does not fit {backbone} "
            f"(embed_dim={c.embed_dim}, depth={c.depth}, num_classes={c.num_classes}): "
            + "; ".join(problems + _hints(state, target, c.embed_dim))
        )
    model.load_state_dict(state, strict=True)


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """The raw state dict of a file or HF folder: unwrapped, common prefix stripped."""
    if path.is_dir():
        found = [path / name for name in _HF_WEIGHT_FILES if (path / name).is_file()]
        if not found:
            raise CheckpointError(f"checkpoint folder {path} has no {' or '.join(_HF_WEIGHT_FILES)}")
        path = found[0]
    obj = _read_file(path)
    while isinstance(obj, dict):  # {"model": {...}}, {"module": {...}}, {"state_dict": {...}}
        inner = next((obj[k] for k in _WRAPPERS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"checkpoint {path} does not contain a state dict (got {type(obj).__name__})")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(f"checkpoint {path} is not a state dict of tensors: entry {bad[0]!r} is not a tensor")
    stripped = True
    while stripped:
        stripped = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in obj):
                obj = {k[len(prefix):]: v for k, v in obj.items()}
                stripped = True
    return obj


def _read_file(path: Path) -> Any:
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        if suffix in _TORCH_SUFFIXES:
            # VideoMAE's training script saves its argparse namespace next to the weights.
            with torch.serialization.safe_globals([argparse.Namespace]):
                return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any reader failure means a bad checkpoint
        raise CheckpointError(f"cannot read checkpoint {path}: {_reason(e)}") from None
    raise CheckpointError(
        f"unsupported checkpoint file type {path.name!r}: expected .safetensors, "
        f"{', '.join(_TORCH_SUFFIXES)} or a Hugging Face model folder"
    )


def to_tokbench_keys(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], str]:
    """Rename a state dict into tokbench keys. Returns (state, layout name)."""
    if any(".patch_embeddings.projection." in k or k.startswith("videomae.") for k in state):
        return _from_hf(state), "Hugging Face"
    is_original = any(re.search(r"\.(q_bias|v_bias|gamma_[12])$", k) for k in state)
    return _from_original(state), "VideoMAE original" if is_original else "tokbench"


def _from_original(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """MCG-NJU/VideoMAE ``modeling_finetune.py`` keys -> tokbench (no-op on tokbench keys)."""
    out: dict[str, Tensor] = {}
    qv: dict[str, dict[str, Tensor]] = {}  # "blocks.{i}.attn" -> {"q": ..., "v": ...}
    for key, value in state.items():
        m = re.fullmatch(r"(blocks\.\d+\.attn)\.([qv])_bias", key)
        if m:
            qv.setdefault(m[1], {})[m[2]] = value
            continue
        out[re.sub(r"^(blocks\.\d+)\.gamma_([12])$", r"\1.ls\2.gamma", key)] = value
    for attn, biases in qv.items():
        out.update(_qkv_bias(attn, biases, unmatched_prefix=attn))
    return out


def _from_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """transformers ``VideoMAEForVideoClassification`` keys -> tokbench.

    Unmapped keys are kept under their HF names so the strict check reports them.
    """
    if any(k.startswith("videomae.layernorm.") for k in state):
        raise CheckpointError(f"Hugging Face VideoMAE checkpoint without fc_norm: {_MEAN_POOLING_ONLY}")
    out: dict[str, Tensor] = {}
    qkv: dict[str, dict[str, Tensor]] = {}  # "blocks.{i}.attn" -> {"q_weight": ..., "v": ...}
    for key, value in state.items():
        if key == "videomae.embeddings.position_embeddings":  # fixed table; checked later
            out["pos_embed"] = value
            continue
        m = re.fullmatch(r"videomae\.encoder\.layer\.(\d+)\.(.+)", key)
        if m is None:
            module, _, param = key.rpartition(".")
            out[f"{_HF_MODULES[module]}.{param}" if module in _HF_MODULES else key] = value
            continue
        block, rest = f"blocks.{m[1]}", m[2]
        part = re.fullmatch(r"attention\.attention\.(?:(query|key|value)\.(weight|bias)|([qv])_bias)", rest)
        if part:
            name = part[1][0] + "_" + part[2] if part[1] else part[3]  # q_weight, k_bias, v, ...
            qkv.setdefault(f"{block}.attn", {})[name.removesuffix("_bias")] = value
            continue
        module, _, param = rest.rpartition(".")
        out[f"{block}.{_HF_LAYER_MODULES[module]}.{param}" if module in _HF_LAYER_MODULES else key] = value
    for attn, parts in qkv.items():
        hf = f"videomae.encoder.layer.{attn.split('.')[1]}.attention.attention"
        weights = [parts.pop(f"{n}_weight", None) for n in "qkv"]
        if all(w is not None for w in weights):
            out[f"{attn}.qkv.weight"] = torch.cat(weights)
        else:  # incomplete: report what there is under HF names
            out.update({f"{hf}.{n}.weight": w for n, w in zip(("query", "key", "value"), weights) if w is not None})
        out.update(_qkv_bias(attn, parts, unmatched_prefix=hf))
    return out


def _qkv_bias(attn: str, biases: dict[str, Tensor], unmatched_prefix: str) -> dict[str, Tensor]:
    """``{q, v[, k]}`` biases -> ``{attn.qkv.bias: cat(q, k or 0, v)}``; VideoMAE has no key bias.

    Without both q and v, the biases are returned as ``{unmatched_prefix}.{q,k,v}_bias`` so
    the strict check reports them.
    """
    if not biases:
        return {}
    if "q" not in biases or "v" not in biases:
        return {f"{unmatched_prefix}.{n}_bias": b for n, b in biases.items()}
    k = biases.get("k", torch.zeros_like(biases["q"]))
    return {f"{attn}.qkv.bias": torch.cat([biases["q"], k, biases["v"]])}


def _drop_fixed_pos_embed(state: dict[str, Tensor], model: VideoViT, path: Path) -> dict[str, Tensor]:
    """Drop a saved ``pos_embed`` if it is the model's fixed sin-cos table; else refuse."""
    if "pos_embed" not in state:
        return state
    saved, table = state["pos_embed"], model.pos_embed.detach().cpu()
    if saved.shape[-2:] != table.shape or saved.numel() != table.numel():
        raise CheckpointError(
            f"checkpoint {path} has pos_embed {_shape(saved)} but this backbone's sin-cos table is "
            f"{_shape(table)}: learned or resized position embeddings are not supported"
        )
    if not torch.allclose(saved.float().reshape(table.shape), table, atol=1e-4, rtol=0):
        raise CheckpointError(
            f"checkpoint {path} has a pos_embed that differs from VideoMAE's fixed sin-cos table: "
            "learned position embeddings are not supported"
        )
    return {k: v for k, v in state.items() if k != "pos_embed"}


def _compare(state: dict[str, Tensor], target: dict[str, Tensor]) -> list[str]:
    mismatched = [
        f"{k} checkpoint {_shape(state[k])} vs model {_shape(target[k])}"
        for k in target if k in state and state[k].shape != target[k].shape
    ]
    problems = [
        (mismatched, "shape mismatch"),
        ([k for k in target if k not in state], "missing keys"),
        ([k for k in state if k not in target], "unknown keys"),
    ]
    return [f"{title}: {_first(items)}" for items, title in problems if items]


def _hints(state: dict[str, Tensor], target: dict[str, Tensor], embed_dim: int) -> list[str]:
    """Config fields the user can pass to make the checkpoint fit."""
    hints = []
    head = state.get("head.weight")
    fits = head is not None and head.dim() == 2 and head.shape[1] == embed_dim
    if fits and ("head.weight" not in target or target["head.weight"].shape != head.shape):
        hints.append(f"the checkpoint's head has {head.shape[0]} classes: pass num_classes={head.shape[0]}")
    has_ls = (any(k.endswith(".ls1.gamma") for k in d) for d in (state, target))
    hints += {
        (True, False): ["the checkpoint has LayerScale: pass init_values (any non-zero value)"],
        (False, True): ["the checkpoint has no LayerScale: pass init_values=None"],
    }.get(tuple(has_ls), [])
    if ("cls_token" in state) != ("cls_token" in target):
        hints.append(f"pass class_token={'cls_token' in state}")
    return hints


# --------------------------------------------------------------------------- helpers


def _existing(checkpoint: str | Path) -> Path:
    path = Path(checkpoint).expanduser()
    if not path.exists():
        if str(checkpoint) == "zoo":  # resolved per dataset by 'tokbench run'; nothing to resolve it by here
            raise CheckpointError("checkpoint 'zoo' stands for the shipped backbone of each synthetic dataset and "
                                  "needs a dataset: give the weights file instead, e.g. "
                                  "tokbench/zoo/synth-motion.safetensors")
        raise CheckpointError(f"checkpoint not found: {path}")
    return regular_file(path, "checkpoint")


def _first(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" (+{len(items) - _SHOWN} more)" if len(items) > _SHOWN else "")


def _shape(t: Tensor) -> str:
    return str(list(t.shape))


def _reason(e: BaseException) -> str:
    """One line from a reader's exception (torch's weights-only errors are paragraphs)."""
    text, hint = str(e), ""
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split(". Please", 1)[0]
        if "Unsupported global" in text:
            hint = " (only tensors and plain containers are loaded, for safety; re-save the state dict alone)"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else 'empty or truncated file'}{hint}"
