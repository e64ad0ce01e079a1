"""Uncertainty of accuracy metrics: bootstrap intervals over clips (and seeds), and paired
comparisons of two methods evaluated on the same clips.

The percentile bootstrap (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13):
draw ``resamples`` sets of n clips with replacement from the n evaluated clips, compute the
metric on each, and take the 2.5 % and 97.5 % quantiles as the 95 % interval. Draws come from a
``torch.Generator`` seeded with ``seed`` (recorded), so an interval is reproducible.

**Seeds.** A stochastic method (random drop) varies with its seed as well as with the clips.
When S > 1 seeds of one method were run on the same clips, each resample also draws S seeds
with replacement and averages the metric over them (a two-level bootstrap: clips, then seeds),
so the interval covers seed variance too; the point estimate is the mean over the seeds.

**Paired comparisons.** Two methods evaluated on the same clips are compared on the *same*
resampled clips: the interval of the difference A - B is much tighter than two separate
intervals, because the clips both get right or wrong cancel. A difference is significant at
95 % when its interval excludes 0.

Metrics are those of :mod:`tokbench.data.metrics` (top-1/top-5, mAP, verb/noun/action top-1);
top-k and verb/noun/action are means of per-clip 0/1 flags and resample in one vectorised
step; mAP is recomputed on every resample, all at once (:func:`weighted_map`).
"""

from __future__ import annotations

import collections
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from tokbench.data.metrics import compute_metrics
from tokbench.errors import TokbenchError

__all__ = ["Scored", "clip_flags", "bootstrap_intervals", "paired_difference", "Difference", "weighted_map", "RESAMPLES",
           "LEVEL"]

RESAMPLES = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Scored:
    """What scoring a task needs, for n clips in a fixed order.

    Attributes:
        task: ``single``, ``multilabel`` or ``verb_noun``.
        scores: (n, K) float view-merged scores of one run; for several seeds of one method,
            a list of them (same clips, same order).
        labels: ``single``: (n,) class ids; ``multilabel``: (n, K) multi-hot; ``verb_noun``:
            (n, 2) verb and noun ids.
        num_verbs: ``verb_noun``: width of the verb block of ``scores``.
    """

    task: str
    scores: Tensor | Sequence[Tensor]
    labels: Tensor
    num_verbs: int | None = None

    def runs(self) -> list[Tensor]:
        return [self.scores] if isinstance(self.scores, Tensor) else list(self.scores)


def _metrics(scored: Scored, scores: Tensor, labels: Tensor) -> dict[str, float]:
    if scored.task == "verb_noun":
        return compute_metrics("verb_noun", scores, verbs=labels[:, 0], nouns=labels[:, 1], num_verbs=scored.num_verbs)
    return compute_metrics(scored.task, scores, labels)


def clip_flags(scored: Scored, scores: Tensor) -> dict[str, Tensor]:
    """Per-clip 0/1 outcomes whose mean is each decomposable metric: ``top1``/``top5``
    (single), ``verb_top1``/``noun_top1``/``action_top1`` (verb_noun); (n,) float64 each.
    Multi-label mAP is not a mean over clips: none."""
    labels = scored.labels
    if scored.task == "single":
        k = min(5, scores.shape[1])
        top = scores.topk(k, dim=1).indices
        hit = top == labels[:, None]
        return {"top1": hit[:, 0].double(), "top5": hit.any(dim=1).double()}
    if scored.task == "verb_noun":
        v = scored.num_verbs
        verb = scores[:, :v].argmax(dim=1) == labels[:, 0]
        noun = scores[:, v:].argmax(dim=1) == labels[:, 1]
        return {"verb_top1": verb.double(), "noun_top1": noun.double(), "action_top1": (verb & noun).double()}
    return {}


@functools.lru_cache(maxsize=16)
def _draws(n: int, s: int, resamples: int, seed: int) -> tuple[Tensor, Tensor]:
    """(R, s) seed indices and (R, n) float64 counts of each clip in each resample, both
    drawn with replacement. Memoised (a report compares hundreds of pairs on the same clips
    with the same seed): callers must not write into them."""
    gen = torch.Generator().manual_seed(seed)
    clips = torch.randint(n, (resamples, n), generator=gen)
    seeds = torch.randint(s, (resamples, s), generator=gen) if s > 1 else torch.zeros(resamples, 1, dtype=torch.long)
    return seeds, _counts(clips, n)


def _counts(clips: Tensor, n: int) -> Tensor:
    """(R, n) clip indices of resamples -> (R, n) float64 times each clip is drawn."""
    return torch.zeros(clips.shape[0], n, dtype=torch.float64).scatter_add_(
        1, clips, torch.ones_like(clips, dtype=torch.float64))


def _resampled(scored: Scored, counts: Tensor, seeds: Tensor, metric: str | None = None) -> dict[str, Tensor]:
    """(R,) values of every metric of ``scored`` (or only ``metric``) on the resamples whose
    clip counts are ``counts`` (R, n) and whose seed indices are ``seeds`` (R, s)."""
    runs = scored.runs()
    R, n = counts.shape
    out: dict[str, Tensor] = {}
    flags = [clip_flags(scored, run.float()) for run in runs]
    if flags[0]:
        pick = torch.zeros(R, len(runs), dtype=torch.float64).scatter_add_(
            1, seeds, torch.ones_like(seeds, dtype=torch.float64))  # (R, S): times each seed is drawn
        for name in flags[0]:
            if metric is not None and name != metric:
                continue
            f = torch.stack([fl[name] for fl in flags])  # (S, n) 0/1 outcomes
            # sum_s pick_rs sum_i counts_ri f_si: integers, so exact in float64 in any order
            out[name] = ((counts @ f.T) * pick).sum(dim=1) / (n * seeds.shape[1])
    if scored.task == "multilabel" and metric in (None, "mAP"):
        per_run = torch.stack([_resampled_map(run.float(), scored.labels, counts) for run in runs])  # (S, R)
        out["mAP"] = per_run.gather(0, seeds.T).mean(dim=0)
    return out


_MAP_MEMO: collections.OrderedDict[bytes, Tensor] = collections.OrderedDict()
_MAP_MEMO_SIZE = 512  # (R,) float64 each: 4 MB at R = 1000


def _resampled_map(scores: Tensor, targets: Tensor, counts: Tensor) -> Tensor:
    """:func:`weighted_map`, memoised on the content of its inputs: a report's paired tests
    compare each cell with many others on the same resamples, and mAP is the one metric
    that is not a matrix product of the counts (about 0.2 s per call on 500 clips)."""
    digest = hashlib.blake2b(digest_size=16)
    for t in (scores, targets, counts):
        t = t.detach().cpu().contiguous()
        digest.update(str((t.dtype, tuple(t.shape))).encode())
        digest.update(t.numpy().tobytes())
    key = digest.digest()
    if key in _MAP_MEMO:
        _MAP_MEMO.move_to_end(key)
        return _MAP_MEMO[key]
    value = weighted_map(scores, targets, counts)
    _MAP_MEMO[key] = value
    if len(_MAP_MEMO) > _MAP_MEMO_SIZE:
        _MAP_MEMO.popitem(last=False)
    return value


def weighted_map(scores: Tensor, targets: Tensor, weights: Tensor, *, chunk_elements: int = 2**25) -> Tensor:
    """mAP of ``scores`` (n, C) against multi-hot ``targets`` (n, C) for each row of sample
    ``weights`` (R, n): a clip drawn k times by a resample is k tied copies of itself, so
    this equals :func:`~tokbench.data.metrics.mean_average_precision` on the resampled rows
    (the same tie rule: a group of equal scores is one threshold), for all R at once.

    Returns:
        (R,) float64; NaN where no class has a positive in the resample.
    """
    n, C = scores.shape
    s, t = scores.double(), targets.double()
    s_sorted, order = s.sort(dim=0, descending=True, stable=True)  # (n, C)
    t_sorted = t.gather(0, order)
    group_end = torch.ones_like(s_sorted, dtype=torch.bool)
    group_end[:-1] = s_sorted[:-1] != s_sorted[1:]
    idx = torch.arange(n)[:, None].expand(n, C)
    end_of = torch.where(group_end, idx, torch.full_like(idx, n)).flip(0).cummin(dim=0).values.flip(0)  # (n, C)
    out = []
    step = max(1, chunk_elements // (n * C))
    for start in range(0, weights.shape[0], step):
        w = weights[start:start + step][:, order]  # (r, n, C): each class's own order
        wt = w * t_sorted
        tp, seen = wt.cumsum(dim=1), w.cumsum(dim=1)
        precision = torch.where(seen > 0, tp / seen.clamp_min(1e-300), torch.zeros_like(tp))
        at_group = precision.gather(1, end_of.expand(w.shape[0], n, C))
        positives = wt.sum(dim=1)  # (r, C)
        ap = (wt * at_group).sum(dim=1) / positives.clamp_min(1e-300)
        ap = torch.where(positives > 0, ap, torch.full_like(ap, float("nan")))
        out.append(ap.nanmean(dim=1))
    return torch.cat(out)


def _quantiles(values: Tensor, level: float) -> tuple[float, float]:
    values = values[~torch.isnan(values)]
    alpha = (1 - level) / 2
    q = torch.quantile(values, torch.tensor([alpha, 1 - alpha], dtype=values.dtype))
    return float(q[0]), float(q[1])


def bootstrap_intervals(scored: Scored, *, resamples: int = RESAMPLES, seed: int = 0, level: float = LEVEL
                        ) -> dict[str, tuple[float, float, float]]:
    """Every metric of ``scored`` with its percentile bootstrap interval.

    Returns:
        ``{metric: (value, low, high)}``: the value on all clips (the mean over seeds when
        several were run), and the ``level`` interval over ``resamples`` resamples of clips
        (and seeds), drawn from ``seed``.
    """
    if resamples < 1:
        raise TokbenchError(f"resamples must be >= 1, got {resamples}")
    runs = scored.runs()
    n = runs[0].shape[0]
    if any(run.shape != runs[0].shape for run in runs):
        raise TokbenchError("the runs of one method must score the same clips: shapes " +
                            ", ".join(str(tuple(r.shape)) for r in runs))
    full = [_metrics(scored, run.float(), scored.labels) for run in runs]
    seeds, counts = _draws(n, len(runs), resamples, seed)
    samples = _resampled(scored, counts, seeds)
    out = {}
    for name in full[0]:
        value = sum(f[name] for f in full) / len(full)
        lo, hi = _quantiles(samples[name], level) if name in samples else (float("nan"), float("nan"))
        out[name] = (value, lo, hi)
    return out


@dataclass(frozen=True)
class Difference:
    """A - B on one metric: the difference on all clips, its paired interval, and the
    two-sided bootstrap p-value (twice the smaller tail mass of the resampled differences at 0)."""

    metric: str
    value: float
    low: float
    high: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_difference(a: Scored, b: Scored, metric: str, *, resamples: int = RESAMPLES, seed: int = 0,
                      level: float = LEVEL) -> Difference:
    """The difference A - B of ``metric`` between two methods scored on the same clips (same
    labels, same order), with a paired bootstrap: each resample draws one set of clips used
    for both (and, for methods with several seeds, each method's seeds independently)."""
    if a.labels.shape != b.labels.shape or not torch.equal(a.labels, b.labels):
        raise TokbenchError("a paired comparison needs the same clips with the same labels in the same order")
    metrics_a = [_metrics(a, r.float(), a.labels) for r in a.runs()]
    if metric not in metrics_a[0]:
        raise TokbenchError(f"no metric {metric!r} for task {a.task!r}: choose from {', '.join(metrics_a[0])}")
    n = a.runs()[0].shape[0]
    seeds_a, counts = _draws(n, len(a.runs()), resamples, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    s_b = len(b.runs())
    seeds_b = torch.randint(s_b, (resamples, s_b), generator=gen) if s_b > 1 else torch.zeros(resamples, 1, dtype=torch.long)
    va, vb = _resampled(a, counts, seeds_a, metric), _resampled(b, counts, seeds_b, metric)
    full_a = sum(m[metric] for m in metrics_a) / len(metrics_a)
    full_b = sum(_metrics(b, r.float(), b.labels)[metric] for r in b.runs()) / len(b.runs())
    diff = va[metric] - vb[metric]
    diff = diff[~torch.isnan(diff)]
    lo, hi = _quantiles(diff, level)
    p = min(1.0, 2 * min(float((diff <= 0).double().mean()), float((diff >= 0).double().mean())))
    return Difference(metric=metric, value=full_a - full_b, low=lo, high=hi, p_value=p)
