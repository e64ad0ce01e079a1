"""Exact FLOP counts with fvcore, in fvcore's convention: one multiply-add = one FLOP.

fvcore traces the model and counts matmuls, linears, convolutions and norms. It gives
``scaled_dot_product_attention`` zero, silently losing 45.3 of VideoMAE ViT-B's 180.5
GFLOPs (fvcore#129, VMamba#296: unregistered ops count zero), so tokbench registers a handle for it that counts exactly
what the explicit path's two matmuls count (QK^T and AV). Elementwise, softmax and
selection ops (add, gelu, topk, sort, gather, ...) count zero, as in every paper we
compare with; they are listed in ``ZERO_COST_OPS`` so that any other op fvcore meets is
reported as unsupported rather than silently dropped.

Counting runs at batch 1. A method whose cost does not depend on content (``none``,
``random``; ``Method.cost_depends_on_content`` False) is counted on the meta device (no
memory, no arithmetic: ViT-L in a fraction of a second); one whose cost does is counted per
clip on real clips and averaged, because E[F(K)] != F(E[K]).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import logging
import math
import os
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from tokbench.backbones.vit import VideoViT, VideoViTConfig
from tokbench.cache import default_cache_dir
from tokbench.errors import TokbenchError
from tokbench.methods.base import Method

# fvcore is TorchScript-based; torch 2.11+ warns that TorchScript is deprecated each time
# fvcore scripts a helper at import or traces a model. Counting still works (checked in
# tests), so only these deprecation messages are silenced, nothing else.
_JIT_DEPRECATED = r"`torch\.jit\.\w+` is deprecated"
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=_JIT_DEPRECATED, category=FutureWarning)
    from fvcore.nn import FlopCountAnalysis
    from fvcore.nn.jit_handles import elementwise_flop_counter, get_shape

__all__ = [
    "FLOP_COUNTER", "FLOPS_UNIT", "FlopCount", "ZERO_COST_OPS", "count_flops", "cached_flops",
    "sdpa_flop_jit", "flop_analysis",
]

#: Recorded with every count; bump the suffix when counting rules change (invalidates caches).
FLOP_COUNTER = "fvcore+sdpa/v1"
#: What the numbers mean, for table headers and plot axes.
FLOPS_UNIT = "GFLOPs per view (fvcore: 1 multiply-add = 1 FLOP)"

#: Ops that cost zero by convention (elementwise, softmax, selection, shape bookkeeping).
ZERO_COST_OPS = (
    "aten::add", "aten::add_", "aten::sub", "aten::mul", "aten::mul_", "aten::div", "aten::neg",
    "aten::gelu", "aten::silu", "aten::sigmoid", "aten::softmax", "aten::log", "aten::exp",
    "aten::mean", "aten::sum", "aten::rand", "aten::randn", "aten::topk", "aten::sort",
    "aten::argsort", "aten::gather", "aten::scatter", "aten::scatter_add", "aten::scatter_reduce",
    "aten::index_select", "aten::masked_fill", "aten::full", "aten::zeros_like", "aten::ones_like",
    "aten::rsub", "aten::abs", "aten::pow", "aten::sqrt", "aten::clamp", "aten::fill_", "aten::lt",
    "aten::gt", "aten::ge", "aten::le", "aten::eq", "aten::ne", "aten::where", "aten::max",
    "aten::min", "aten::argmax", "aten::cumsum", "aten::floor_divide", "aten::remainder",
    "aten::linalg_vector_norm", "aten::norm", "aten::expand_as", "aten::repeat",
    # merging (ToMe, vid-TLDR), pixel cues (RLT, motion): reductions, pooling and masks
    "aten::xlogy", "aten::amax", "aten::amin", "aten::clamp_min", "aten::__or__", "aten::__and__",
    "aten::bitwise_not", "aten::logical_not", "aten::avg_pool3d", "aten::replication_pad3d", "aten::pad",
    "aten::masked_fill_", "aten::clamp_min_", "aten::clamp_max",
)

log = logging.getLogger(__name__)


def sdpa_flop_jit(inputs, outputs) -> int:
    """fvcore handle for ``aten::scaled_dot_product_attention``: QK^T + AV multiply-adds.

    Q (..., Lq, d), K (..., Lk, d), V (..., Lk, dv) -> prod(...) * Lq * Lk * (d + dv).
    """
    q, k, v = (get_shape(inputs[i]) for i in range(3))
    batch_heads = math.prod(q[:-2])
    return batch_heads * q[-2] * k[-2] * (q[-1] + v[-1])


class _Probe(nn.Module):
    """fvcore traces a module with tensor inputs; this closes over the method."""

    def __init__(self, backbone: VideoViT, method: Method) -> None:
        super().__init__()
        self.backbone = backbone
        self.method = method
        self.method_networks = nn.ModuleList(method.networks())  # traced as parameters, not constants

    def forward(self, video: Tensor) -> Tensor:
        return self.backbone(video, self.method)


def flop_analysis(backbone: VideoViT, method: Method, video: Tensor) -> FlopCountAnalysis:
    """An fvcore analysis of ``backbone(video, method)`` with tokbench's handles."""
    return _with_handles(FlopCountAnalysis(_Probe(backbone, method), (video,)))


@dataclass
class FlopCount:
    """FLOPs of one (backbone, method, P) point, per view (clip) at batch 1."""

    gflops: float  # mean over clips when content-dependent
    gflops_std: float  # spread over clips (0 when content-independent)
    params: int  # backbone + method parameters
    tokens_per_block: list[float]  # mean tokens entering each block
    by_operator: dict[str, float]  # GFLOPs by aten op, for auditing
    unsupported_ops: dict[str, int] = field(default_factory=dict)  # ops fvcore could not count
    counter: str = FLOP_COUNTER
    clips: int = 1  # clips averaged


def _with_handles(analysis: FlopCountAnalysis) -> FlopCountAnalysis:
    analysis.set_op_handle("aten::scaled_dot_product_attention", sdpa_flop_jit)
    # The antialiased resize (the resolution baseline) counts as fvcore counts a bilinear one:
    # 4 per output element (fvcore's own rule for aten::upsample_bilinear2d).
    analysis.set_op_handle("aten::_upsample_bilinear2d_aa", elementwise_flop_counter(0, 4))
    analysis.set_op_handle(**{op: None for op in ZERO_COST_OPS})
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return analysis


def _count_once(backbone: VideoViT, method: Method, video: Tensor) -> tuple[float, dict, dict, Tensor]:
    analyses = [flop_analysis(backbone, method, video)]
    # Networks whose output only picks a budget are invisible to the trace: traced on their own.
    analyses += [_with_handles(FlopCountAnalysis(net, (video,))) for net in method.decision_networks()]
    total, by_op, unsupported = 0.0, {}, {}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_JIT_DEPRECATED, category=FutureWarning)
        for analysis in analyses:
            total += analysis.total()
            for op, n in analysis.by_operator().items():
                if n:
                    by_op[op] = by_op.get(op, 0.0) + n / 1e9
            unsupported.update(analysis.unsupported_ops())
        _, counts = backbone.forward_with_info(video, method)
    return total / 1e9, by_op, unsupported, counts[0].double()


def count_flops(
    config: VideoViTConfig, method: Method, *, videos: Tensor | None = None,
    backbone: VideoViT | None = None,
) -> FlopCount:
    """Count FLOPs of ``method`` on a backbone of ``config``.

    Args:
        config: backbone geometry and width (weights do not change FLOPs).
        method: a configured (and, if it needs it, calibrated) method. It is left as it is:
            a shallow copy of it is set up on the counted backbone, so the caller's instance
            stays set up on the real model.
        videos: (n, C, T, H, W) clips for content-dependent methods; counted one by one.
        backbone: the model to count when the method needs its weights (learned
            selectors); by default a fresh one is built on the meta device.

    Raises:
        TokbenchError: a content-dependent method without ``videos``.
    """
    depends = getattr(method, "cost_depends_on_content", False)
    if depends and videos is None:
        raise TokbenchError(f"method {method.name!r} costs depend on content: pass sample clips")
    if backbone is None:
        with torch.device("cpu" if depends else "meta"):
            backbone = VideoViT(config)
    backbone.eval()
    method = copy.copy(method)  # its own copy: setup() rebinds attributes to the counted backbone
    method.setup(backbone)
    device = next(backbone.parameters()).device
    if videos is None:
        videos = torch.zeros(1, *config.input_shape, device=device)
    totals, tokens, by_op, unsupported = [], [], {}, {}
    # A method whose cost is set by its token counts (RLT) is traced once per distinct count.
    by_counts: dict[tuple, tuple] = {}
    for i in range(videos.shape[0]):
        clip = videos[i : i + 1].to(device)
        key = None
        if getattr(method, "cost_set_by_token_counts", False):
            with torch.no_grad():
                key = tuple(backbone.forward_with_info(clip, method)[1][0].tolist())
        if key is None or key not in by_counts:
            once = _count_once(backbone, method, clip)
            if key is not None:
                by_counts[key] = once
        else:
            once = by_counts[key]
        total, ops, unsup, counts = once
        totals.append(total)
        tokens.append(counts)
        for op, g in ops.items():
            by_op[op] = by_op.get(op, 0.0) + g / videos.shape[0]
        unsupported.update(unsup)
    if unsupported:
        log.warning("fvcore could not count %s; these ops count zero", sorted(unsupported))
    t = torch.tensor(totals, dtype=torch.float64)
    params = sum(p.numel() for p in backbone.parameters()) + method.extra_params()
    return FlopCount(
        gflops=t.mean().item(),
        gflops_std=t.std(unbiased=False).item(),
        params=params,
        tokens_per_block=torch.stack(tokens).mean(0).tolist(),
        by_operator=by_op,
        unsupported_ops=unsupported,
        clips=len(totals),
    )


def flops_cache_key(config: VideoViTConfig, method: Method) -> str:
    """Stable key of a (geometry, method spec, P) point under the current counting rules."""
    blob = json.dumps(
        {"config": config.to_dict(), "method": method.name, "params": method.params(),
         "p_ratio": method.p_ratio, "counter": FLOP_COUNTER},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def cached_flops(
    config: VideoViTConfig, method: Method, *, cache_dir: Path | None = None, **kwargs
) -> FlopCount:
    """:func:`count_flops` for content-independent methods, cached on disk by
    (backbone geometry, method spec, P); tracing ViT-B takes seconds on a CPU."""
    if getattr(method, "cost_depends_on_content", False):
        return count_flops(config, method, **kwargs)
    # The trunk is counted without the classifier and the head added exactly: models that
    # differ only in their class count (the six zoo backbones) share one trace.
    trunk = dataclasses.replace(config, num_classes=0)
    path = (cache_dir or default_cache_dir()) / "flops.json"
    key = flops_cache_key(trunk, method)
    cached = _cached_count(_read_cache(path).get(key))
    if cached is not None:
        return _with_head(cached, config)
    result = count_flops(trunk, method, **kwargs)
    if not result.unsupported_ops:  # never cache a count that may be incomplete
        cache = _read_cache(path)  # re-read: another process may have added entries
        cache[key] = asdict(result)
        _write_cache(path, cache)
    return _with_head(result, config)


def _with_head(count: FlopCount, config: VideoViTConfig) -> FlopCount:
    """``count`` of a headless trunk plus the linear head of ``config``: embed_dim x classes
    multiply-adds per clip (fvcore's linear rule on the one pooled feature) and its parameters."""
    if config.num_classes == 0:
        return count
    flops = config.embed_dim * config.num_classes / 1e9
    by_op = dict(count.by_operator)
    by_op["linear"] = by_op.get("linear", 0.0) + flops
    params = count.params + config.embed_dim * config.num_classes + config.num_classes
    return dataclasses.replace(count, gflops=count.gflops + flops, params=params, by_operator=by_op)


def _read_cache(path: Path) -> dict:
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # a missing or damaged cache is rebuilt, never fatal
    return cache if isinstance(cache, dict) else {}  # `[]` or `null`: damaged too


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _cached_count(entry) -> FlopCount | None:
    """The FlopCount a cache entry holds, or None when the entry is missing or damaged (a
    field missing, extra or of the wrong type, or counted under other rules): such an entry
    is counted again and overwritten, never trusted."""
    names = {f.name for f in dataclasses.fields(FlopCount)}
    if not isinstance(entry, dict) or set(entry) != names or entry["counter"] != FLOP_COUNTER:
        return None
    ok = (
        all(_is_number(entry[k]) and entry[k] >= 0 for k in ("gflops", "gflops_std"))
        and isinstance(entry["params"], int) and not isinstance(entry["params"], bool) and entry["params"] >= 0
        and isinstance(entry["clips"], int) and not isinstance(entry["clips"], bool) and entry["clips"] >= 1
        and isinstance(entry["tokens_per_block"], list) and len(entry["tokens_per_block"]) > 0
        and all(_is_number(t) and t >= 0 for t in entry["tokens_per_block"])
        and isinstance(entry["by_operator"], dict) and all(_is_number(v) for v in entry["by_operator"].values())
        and isinstance(entry["unsupported_ops"], dict) and not entry["unsupported_ops"]  # such counts are never cached
    )
    if not ok:
        log.info("the FLOPs cache has a damaged entry; counting it again")
        return None
    return FlopCount(**entry)


def _write_cache(path: Path, cache: dict) -> None:
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            tmp = f.name
            json.dump(cache, f)
        os.replace(tmp, path)  # atomic: readers see the old or the new file
    except (OSError, TypeError, ValueError) as e:  # a full disk, or an entry json cannot write
        log.warning("could not write the FLOPs cache %s: %s", path, e)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # no half-written temporary left beside the cache
