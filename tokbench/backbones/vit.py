"""``VideoViT``: the one video transformer every method runs through.

Architecture of VideoMAE's fine-tuning model (Tong et al., NeurIPS 2022,
MCG-NJU/VideoMAE ``modeling_finetune.py``): a Conv3d tubelet embedding, a fixed 1-D
sin-cos position table over the flattened (t, h, w) grid, pre-norm blocks, mean pooling
-> ``fc_norm`` -> linear head. The blocks are timm ``Block`` modules (so weights use timm's
names), but the forward pass is ours: it calls the block's parts in order and gives the
method a hook between attention and MLP. Differences from VideoMAE:

* the tubelet embedding runs as a linear map on flattened tubelets (same weights and
  result as the Conv3d, checked in tests), so a method may embed only the tubelets it
  keeps;
* the position table is gathered by each token's original index, so dropped or
  reordered tokens keep their positions;
* pooling is weighted by ``Tokens.size`` (merging methods) and ignores padding;
* an optional CLS token (``class_token=True``) is supported for tests and image-style
  backbones; it is a prefix token, never dropped;
* a method may hand the backbone a clip of another size to tokenize (``Method.input_video``,
  the ``resolution`` baseline): the tubelet grid is read from the clip, and the position of
  each tubelet of that grid is its centre in the native grid's units, where the sin-cos
  formula is evaluated (:func:`grid_positions`); the native grid gets the table unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import asdict, dataclass, fields
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from tokbench.errors import TokbenchError
from tokbench.hooks import IDENTITY, Method
from tokbench.tokens import Clips, Tokens

__all__ = [
    "VideoViT", "VideoViTConfig", "TubeletEmbed", "sincos_table", "sincos_at", "grid_positions", "grid_owners",
    "self_attention",
]

AttnImpl = Literal["sdpa", "explicit"]
#: The largest classifier head a config accepts (--num-classes, config.json's num_labels).
MAX_CLASSES = 2**20


@dataclass(frozen=True)
class VideoViTConfig:
    """Geometry and width of a :class:`VideoViT`. Every field is a plain value so a config
    is its own cache key (FLOPs are cached per config)."""

    num_frames: int = 16
    img_size: int = 224
    tubelet_size: int = 2
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    init_values: float | None = None  # LayerScale init; None = no LayerScale (VideoMAE default)
    class_token: bool = False
    global_pool: Literal["avg", "token"] = "avg"
    norm_eps: float = 1e-6  # block LayerNorms (VideoMAE 1e-6; HF config default 1e-12)
    fc_norm_eps: float = 1e-6  # pooled-feature LayerNorm (VideoMAE 1e-6; HF 1e-5)
    num_classes: int = 400
    drop_path_rate: float = 0.0
    attn_impl: AttnImpl = "sdpa"

    def __post_init__(self) -> None:
        checks = [
            (self.img_size % self.patch_size == 0, "img_size must be a multiple of patch_size"),
            (self.num_frames % self.tubelet_size == 0, "num_frames must be a multiple of tubelet_size"),
            (self.embed_dim % self.num_heads == 0, "embed_dim must be a multiple of num_heads"),
            (self.global_pool in ("avg", "token"), "global_pool must be 'avg' or 'token'"),
            (self.global_pool == "avg" or self.class_token, "global_pool='token' needs class_token=True"),
            (self.attn_impl in ("sdpa", "explicit"), "attn_impl must be 'sdpa' or 'explicit'"),
            (self.num_classes >= 0 and self.depth >= 1, "num_classes must be >= 0 and depth >= 1"),
            # A head past this is no dataset's (21k ImageNet classes; Kinetics has 700): refused
            # here rather than stored as an `oom` cell or counted as petaFLOPs.
            (self.num_classes <= MAX_CLASSES, f"num_classes must be at most {MAX_CLASSES}"),
        ]
        for ok, message in checks:
            if not ok:
                raise TokbenchError(f"invalid backbone config: {message} (got {self})")

    @property
    def grid(self) -> tuple[int, int, int]:
        """Tubelet grid (T', H', W'), flattened in this order into tokens."""
        side = self.img_size // self.patch_size
        return (self.num_frames // self.tubelet_size, side, side)

    @property
    def num_patches(self) -> int:
        return math.prod(self.grid)

    @property
    def n_prefix(self) -> int:
        return int(self.class_token)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """(C, T, H, W) of one clip."""
        return (self.in_chans, self.num_frames, self.img_size, self.img_size)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def sincos_table(n_position: int, dim: int) -> Tensor:
    """VideoMAE's fixed 1-D sinusoid table, (n_position, dim) float32.

    Entry (p, j) is sin (j even) or cos (j odd) of p / 10000^(2*(j//2)/dim), computed in
    float64 as VideoMAE does with NumPy.
    """
    return sincos_at(torch.arange(n_position, dtype=torch.float64), dim)


def sincos_at(positions: Tensor, dim: int) -> Tensor:
    """The sinusoid of :func:`sincos_table` at any (possibly fractional) positions:
    (N,) -> (N, dim) float32, computed in float64 (integer positions give the table's rows
    exactly)."""
    pos = positions.to(torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64, device=pos.device)[None, :]
    angle = pos / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.empty_like(angle)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.float()


def grid_positions(native: tuple[int, int, int], grid: tuple[int, int, int]) -> Tensor:
    """Flattened position in the ``native`` (T', H', W') tubelet grid of each tubelet of
    ``grid``, (prod(grid),) float64 in (t, h, w) order.

    Along each axis, tubelet j of g covers the same part of the clip as native tubelets
    [j G/g, (j + 1) G/g), so its centre is at native coordinate (j + 0.5) G/g - 0.5; the
    flattened position is (t H' + h) W' + w, as VideoMAE's 1-D table is indexed. At
    ``grid == native`` these are the integers 0 .. N - 1.
    """
    axes = [(torch.arange(g, dtype=torch.float64) + 0.5) * (G / g) - 0.5 for G, g in zip(native, grid)]
    t, h, w = torch.meshgrid(*axes, indexing="ij")
    return ((t * native[1] + h) * native[2] + w).flatten()


@functools.lru_cache(maxsize=16)
def _grid_table(native: tuple[int, int, int], grid: tuple[int, int, int], dim: int) -> Tensor:
    # Memoised (a pure function of three tuples): the N x D sines took longer than the zoo
    # model's whole forward pass on a busy 2-core CPU when rebuilt in every pass.
    return sincos_at(grid_positions(native, grid), dim)


def grid_owners(native: tuple[int, int, int], grid: tuple[int, int, int]) -> Tensor:
    """For each native tubelet, (prod(native),) int64, the tubelet of ``grid`` whose extent
    holds its centre: native i -> floor((i + 0.5) g / G) along each axis. Used to draw what
    a resized clip's tokens cover in the native grid."""
    axes = [torch.div((2 * torch.arange(G) + 1) * g, 2 * G, rounding_mode="floor") for G, g in zip(native, grid)]
    t, h, w = torch.meshgrid(*axes, indexing="ij")
    return ((t * grid[1] + h) * grid[2] + w).flatten()


class TubeletEmbed(nn.Module):
    """Tubelet embedding: non-overlapping (t, p, p) tubelets -> D-dim tokens.

    The weights are a ``Conv3d`` (kernel = stride = (t, p, p)), as in VideoMAE; the forward
    pass flattens tubelets in (C, t, p, p) order and applies the same weights as a linear
    map, which lets a method embed only the tubelets it keeps (``index``).
    """

    def __init__(self, *, in_chans: int, embed_dim: int, tubelet_size: int, patch_size: int):
        super().__init__()
        self.tubelet = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=self.tubelet, stride=self.tubelet)

    def tubelets(self, video: Tensor) -> Tensor:
        """(B, C, T, H, W) -> (B, N, C*t*p*p), tokens in (t, h, w) raster order."""
        B, C, T, H, W = video.shape
        t, p, _ = self.tubelet
        x = video.reshape(B, C, T // t, t, H // p, p, W // p, p)
        x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)  # (B, T', H', W', C, t, p, p)
        return x.reshape(B, (T // t) * (H // p) * (W // p), C * t * p * p)

    def forward(self, video: Tensor, index: Tensor | None = None) -> Tensor:
        """Embed all tubelets, or only those at ``index`` (B, K): -> (B, N or K, D)."""
        x = self.tubelets(video)
        if index is not None:
            x = x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))
        return F.linear(x, self.proj.weight.flatten(1), self.proj.bias)


def self_attention(
    attn: nn.Module,
    x: Tensor,
    *,
    bias: Tensor | None = None,
    impl: AttnImpl = "sdpa",
    need: Literal["keys", "probs"] | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Multi-head self-attention with the weights of a timm ``Attention`` module.

    Args:
        attn: timm ``Attention`` (its ``qkv``, ``q_norm``, ``k_norm``, ``norm``, ``proj``).
        x: (B, N, D) normalised tokens.
        bias: additive logit bias broadcastable to (B, heads, N, N): padding (-inf) and
            proportional attention (log size).
        impl: ``"sdpa"`` (fused ``scaled_dot_product_attention``) or ``"explicit"``
            (``q @ k^T``, softmax, ``@ v``). Both give the same result and the same FLOP
            count under tokbench's fvcore handles.
        need: also return ``"keys"`` (B, heads, N, d) for ToMe-style matching, or
            ``"probs"`` (B, heads, N, N) attention probabilities, which forces the
            explicit path.

    Returns:
        (out (B, N, D), keys or probs or None)
    """
    B, N, _ = x.shape
    qkv = attn.qkv(x).reshape(B, N, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # (B, heads, N, d) each
    q, k = attn.q_norm(q), attn.k_norm(k)
    probs = None
    dropout = attn.attn_drop.p if attn.training else 0.0
    if impl == "explicit" or need == "probs":
        logits = (q * attn.scale) @ k.transpose(-2, -1)  # (B, heads, N, N)
        if bias is not None:
            logits = logits + bias
        probs = logits.softmax(dim=-1)
        out = attn.attn_drop(probs) @ v
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout)
    out = attn.proj_drop(attn.proj(attn.norm(out.transpose(1, 2).reshape(B, N, -1))))
    extra = k if need == "keys" else probs if need == "probs" else None
    return out, extra


def attention_bias(tokens: Tokens, *, proportional: bool) -> Tensor | None:
    """Additive (B, 1, 1, N) logit bias: -inf on padding keys, + log(size) if proportional
    (ToMe's proportional attention). ``None`` when neither applies, so SDPA stays unmasked."""
    bias = None
    if proportional and tokens.size is not None:
        bias = tokens.size[:, None, None, :, 0].log().to(tokens.x.dtype)
    if tokens.mask is not None:
        pad = torch.zeros(tokens.mask.shape, dtype=tokens.x.dtype, device=tokens.x.device)
        pad = pad.masked_fill(~tokens.mask, float("-inf"))[:, None, None, :]
        bias = pad if bias is None else bias + pad
    return bias


class VideoViT(nn.Module):
    """A VideoMAE-style video ViT whose forward pass runs a token-reduction :class:`Method`.

    Input ``video`` is (B, C, T, H, W), normalised. ``forward(video, method)`` returns
    logits (B, num_classes); ``forward_with_info`` also returns the tokens seen by each
    block, (B, depth).
    """

    def __init__(self, config: VideoViTConfig) -> None:
        super().__init__()
        self.config = c = config
        D = c.embed_dim
        self.patch_embed = TubeletEmbed(
            in_chans=c.in_chans, embed_dim=D, tubelet_size=c.tubelet_size, patch_size=c.patch_size
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D)) if c.class_token else None
        # Fixed table, not a parameter and not in state dicts (as in VideoMAE).
        self.register_buffer("pos_embed", sincos_table(c.num_patches, D), persistent=False)
        norm = partial(nn.LayerNorm, eps=c.norm_eps)
        dpr = [c.drop_path_rate * i / max(c.depth - 1, 1) for i in range(c.depth)]  # stochastic depth rule
        self.blocks = nn.ModuleList(
            Block(
                D, c.num_heads, mlp_ratio=c.mlp_ratio, qkv_bias=c.qkv_bias,
                init_values=c.init_values, drop_path=dpr[i], norm_layer=norm,
            )
            for i in range(c.depth)
        )
        token_pool = c.global_pool == "token"
        self.norm = norm(D) if token_pool else nn.Identity()
        self.fc_norm = nn.Identity() if token_pool else nn.LayerNorm(D, eps=c.fc_norm_eps)
        self.head = nn.Linear(D, c.num_classes) if c.num_classes > 0 else nn.Identity()
        self.apply(_init_weights)
        if self.cls_token is not None:
            trunc_normal_(self.cls_token, std=0.02)

    @property
    def num_patches(self) -> int:
        return self.config.num_patches

    def check_input(self, video: Tensor) -> None:
        expected = self.config.input_shape
        if video.dim() != 5 or tuple(video.shape[1:]) != expected:
            raise TokbenchError(
                f"video of shape {tuple(video.shape)} does not fit this backbone: "
                f"expected (B, {', '.join(map(str, expected))}) as (B, C, T, H, W)"
            )

    def grid_of(self, video: Tensor) -> tuple[int, int, int]:
        """Tubelet grid (T', H', W') of a (B, C, T, H, W) clip: the config's ``grid`` for a
        clip of the native size, another one for a clip a method resized.

        Raises:
            TokbenchError: the clip does not cut into whole tubelets.
        """
        c = self.config
        t, p = c.tubelet_size, c.patch_size
        if video.dim() != 5 or video.shape[1] != c.in_chans or video.shape[2] % t or video.shape[3] % p \
                or video.shape[4] % p or 0 in video.shape[2:]:
            raise TokbenchError(
                f"a clip of shape {tuple(video.shape)} does not cut into {t}x{p}x{p} tubelets of "
                f"{c.in_chans} channels: (B, C, T, H, W) needs T a multiple of {t}, H and W of {p}"
            )
        # int(): under fvcore's trace the sizes are 0-dim tensors, which would miss the table cache
        return (int(video.shape[2]) // t, int(video.shape[3]) // p, int(video.shape[4]) // p)

    def position_embedding(self, grid: tuple[int, int, int]) -> Tensor:
        """(prod(grid), D) position embedding of a tubelet grid: the fixed table at the
        native grid (the very buffer), else the sin-cos formula evaluated at each tubelet's
        centre in native units (:func:`grid_positions`): where resampling the table in
        (t, h, w) would read it, without interpolating between its rows."""
        if tuple(grid) == self.config.grid:
            return self.pos_embed
        return _grid_table(self.config.grid, tuple(grid), self.config.embed_dim).to(self.pos_embed.device)

    def embed(self, clips: Clips, method: Method) -> Tokens:
        """Tubelet embedding + position embedding of the tubelets the method keeps, in the
        grid of ``clips.video`` (the native one unless a method resized the clip)."""
        grid = self.grid_of(clips.video)
        n = math.prod(grid)
        index = method.before_embed(clips, n)  # (B, K) or None = all; -1 = padding
        mask = None
        if index is not None and not index.is_meta and bool((index < 0).any()):
            mask = index >= 0  # padding embeds tubelet 0 and is masked out of attention and pooling
            index = index.clamp_min(0)
        x = self.patch_embed(clips.video, index)  # (B, K, D)
        pos = self.position_embedding(grid).to(x.dtype)
        if index is None:
            x = x + pos
            index = torch.arange(n, device=x.device).expand(x.shape[0], -1)
        else:
            x = x + pos[index]
        p = self.config.n_prefix
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)
        if mask is not None and p:
            mask = torch.cat([mask.new_ones(mask.shape[0], p), mask], dim=1)
        return Tokens(x=x, index=index, n_prefix=p, mask=mask)

    def block_forward(self, layer: int, tokens: Tokens, method: Method) -> Tokens:
        """One pre-norm block: attention, the method's ``after_attn`` hook, MLP, its
        ``after_block`` hook."""
        block = self.blocks[layer]
        bias = attention_bias(tokens, proportional=method.proportional_attention)
        out, extra = self_attention(
            block.attn, block.norm1(tokens.x), bias=bias,
            impl=self.config.attn_impl, need=method.attention_needs(layer),
        )
        tokens = tokens.replace(x=tokens.x + block.drop_path1(block.ls1(out)))
        tokens = method.after_attn(layer, tokens, extra)
        x = tokens.x
        tokens = tokens.replace(x=x + block.drop_path2(block.ls2(block.mlp(block.norm2(x)))))
        return method.after_block(layer, tokens, extra)

    def encode(self, video: Tensor, method: Method | None = None, *, blocks: int | None = None,
               clip_ids: Tensor | None = None, labels: Tensor | None = None) -> Tokens:
        """The tokens after the embedding and the first ``blocks`` blocks (all by default),
        running ``method``'s hooks: ``Tokens.x`` is (B, n_prefix + N, D). The one way the
        selectors, teachers and oracle run part of a backbone."""
        method = IDENTITY if method is None else method
        tokens = self._embedded(video, method, clip_ids, labels)
        for layer in range(len(self.blocks) if blocks is None else blocks):
            tokens = self.block_forward(layer, tokens, method)
        return tokens

    def mlp_hidden(self, layer: int, tokens: Tokens) -> tuple[Tensor, Tensor]:
        """Block ``layer`` up to its MLP's hidden activations (no method hooks): the tokens
        after the attention residual, (B, N, D), and A = act(fc1(norm2(x))), (B, N, hidden)
        (LITE's Grad-CAM tensor). :meth:`mlp_rest` finishes the block from them."""
        block = self.blocks[layer]
        out, _ = self_attention(block.attn, block.norm1(tokens.x), bias=attention_bias(tokens, proportional=False),
                                impl=self.config.attn_impl)
        x = tokens.x + block.drop_path1(block.ls1(out))
        mlp = block.mlp
        return x, mlp.act(mlp.fc1(block.norm2(x)))

    def mlp_rest(self, layer: int, x: Tensor, hidden: Tensor) -> Tensor:
        """The rest of block ``layer`` from :meth:`mlp_hidden`'s (x, A): x + MLP output."""
        block, mlp = self.blocks[layer], self.blocks[layer].mlp
        return x + block.drop_path2(block.ls2(mlp.drop2(mlp.fc2(mlp.norm(mlp.drop1(hidden))))))

    def pool(self, tokens: Tokens, *, size_weighted: bool = True) -> Tensor:
        """(B, D) clip feature: (size-weighted) mean of real patch tokens -> fc_norm, or CLS."""
        if self.config.global_pool == "token":
            return self.norm(tokens.x)[:, 0]
        p = tokens.n_prefix
        x = tokens.x[:, p:]
        weight = None
        if tokens.size is not None and size_weighted:
            weight = tokens.size[:, p:].to(x.dtype)
        if tokens.mask is not None:
            real = tokens.mask[:, p:, None].to(x.dtype)
            weight = real if weight is None else weight * real
        pooled = x.mean(1) if weight is None else (x * weight).sum(1) / weight.sum(1)
        return self.fc_norm(pooled)

    def _embedded(self, video: Tensor, method: Method, clip_ids: Tensor | None, labels: Tensor | None, *,
                  track_source: bool = False) -> Tokens:
        """Checked input -> embedded tokens after the method's ``after_embed``."""
        self.check_input(video)
        if clip_ids is None:
            clip_ids = torch.arange(video.shape[0], device=video.device)
        clips = Clips(video=video, ids=clip_ids, labels=labels)
        resized = method.input_video(clips)
        if resized is not video:
            clips = dataclasses.replace(clips, video=resized)
        tokens = self.embed(clips, method)
        if track_source:
            p = tokens.n_prefix
            grid = self.grid_of(clips.video)
            if grid == self.config.grid:
                one_hot = F.one_hot(tokens.index, self.num_patches).to(tokens.x.dtype)
            else:  # a token of a resized clip holds the native patches whose centres it covers
                cover = F.one_hot(grid_owners(self.config.grid, grid), math.prod(grid)).T  # (n, N0)
                one_hot = cover.to(tokens.x.device, tokens.x.dtype)[tokens.index]
            if tokens.mask is not None:  # padding holds no patch
                one_hot = one_hot * tokens.mask[:, p:, None].to(one_hot.dtype)
            tokens = tokens.replace(source=torch.cat([one_hot.new_zeros(one_hot.shape[0], p, self.num_patches),
                                                      one_hot], dim=1))
        return method.after_embed(tokens, clips)

    def _run(self, video: Tensor, method: Method | None, clip_ids: Tensor | None,
             labels: Tensor | None, count: bool) -> tuple[Tensor, Tensor | None]:
        method = IDENTITY if method is None else method
        tokens = self._embedded(video, method, clip_ids, labels)
        if tokens.mask is not None and method.variable_length == "split":
            # Clips that keep as many tokens run together, each group at its own length: no
            # padding computed (measured faster than padded batches on the CPU; see
            # benchmarks/realized_speedup.py). LITE++ has two or three lengths per batch.
            lengths = tokens.mask.sum(1)
            features: list = [None] * len(lengths)
            counts: list = [None] * len(lengths)
            for length in lengths.unique().tolist():
                rows = (lengths == length).nonzero().flatten().tolist()
                f, c = self._blocks(_unpad(tokens, rows), method, count)
                for j, b in enumerate(rows):
                    features[b], counts[b] = f[j], (c[j] if count else None)
            return torch.stack(features), torch.stack(counts) if count else None
        return self._blocks(tokens, method, count)

    def _blocks(self, tokens: Tokens, method: Method, count: bool) -> tuple[Tensor, Tensor | None]:
        """Every block, then the pool: (B, D) features and, if ``count``, tokens per block."""
        counts = []
        for layer in range(len(self.blocks)):
            if count:
                counts.append(_token_count(tokens))
            tokens = self.block_forward(layer, tokens, method)
        return self.pool(tokens, size_weighted=method.size_weighted_pool), torch.stack(counts, dim=1) if count else None

    def trace_tokens(
        self, video: Tensor, method: Method | None = None, *,
        clip_ids: Tensor | None = None, labels: Tensor | None = None,
    ) -> Tokens:
        """The tokens leaving the last block, with ``source`` (B, N, num_patches) tracked:
        row i says which original patches token i holds (one for a kept token, its whole
        group for a merged one; padding and prefix rows are zero). For ``tokbench viz``;
        slower than :meth:`forward` by the (N x num_patches) bookkeeping."""
        method = IDENTITY if method is None else method
        tokens = self._embedded(video, method, clip_ids, labels, track_source=True)
        for layer in range(len(self.blocks)):
            tokens = self.block_forward(layer, tokens, method)
        return tokens

    def forward_features(
        self, video: Tensor, method: Method | None = None, *,
        clip_ids: Tensor | None = None, labels: Tensor | None = None,
    ) -> Tensor:
        """(B, C, T, H, W) -> pooled clip features (B, D), after ``fc_norm``."""
        return self._run(video, method, clip_ids, labels, count=False)[0]

    def forward_with_info(
        self, video: Tensor, method: Method | None = None, *,
        clip_ids: Tensor | None = None, labels: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Returns (logits (B, num_classes), tokens entering each block (B, depth) int64 on
        the CPU; prefix tokens included, padding excluded)."""
        features, counts = self._run(video, method, clip_ids, labels, count=True)
        return self.head(features), counts

    def forward(
        self, video: Tensor, method: Method | None = None, *,
        clip_ids: Tensor | None = None, labels: Tensor | None = None,
    ) -> Tensor:
        """(B, C, T, H, W) -> logits (B, num_classes), running ``method``'s hooks.

        Args:
            video: normalised clips.
            method: a configured :class:`Method`; ``None`` runs the full model.
            clip_ids: (B,) stable clip ids for per-clip seeding (default ``arange(B)``).
            labels: targets, for privileged methods only.
        """
        features, _ = self._run(video, method, clip_ids, labels, count=False)
        return self.head(features)


def _unpad(tokens: Tokens, rows: list[int]) -> Tokens:
    """Clips ``rows`` of a padded batch, which keep equally many tokens, without padding."""
    p = tokens.n_prefix
    masks = [tokens.mask[b] for b in rows]
    return Tokens(
        x=torch.stack([tokens.x[b, m] for b, m in zip(rows, masks)]),
        index=torch.stack([tokens.index[b, m[p:]] for b, m in zip(rows, masks)]), n_prefix=p,
        size=None if tokens.size is None else torch.stack([tokens.size[b, m] for b, m in zip(rows, masks)]),
    )


def _token_count(tokens: Tokens) -> Tensor:
    # On the CPU from shapes alone when there is no padding, so it works on the meta device.
    if tokens.mask is None:
        return torch.full((tokens.x.shape[0],), tokens.x.shape[1], dtype=torch.long, device="cpu")
    return tokens.mask.sum(1).cpu()


def _init_weights(module: nn.Module) -> None:
    # timm/VideoMAE init: truncated normal linears, unit LayerNorms.
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
