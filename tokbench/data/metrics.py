"""Evaluation metrics: pure functions on tensors (torch only, no scikit-learn).

==============  ===============================================  =========================================
task            metrics (keys of :func:`compute_metrics`)        used for
==============  ===============================================  =========================================
``single``      ``top1``, ``top5`` (:func:`topk_accuracy`)        K400, SSv2, Diving48, synthetic suite
``multilabel``  ``mAP`` (:func:`mean_average_precision`)          Charades (video-level mAP)
``verb_noun``   ``verb_top1``, ``noun_top1``, ``action_top1``    EPIC-Kitchens-100
                (:func:`verb_noun_accuracy`)
==============  ===============================================  =========================================

All values are floats in [0, 1] (not percent). Multi-view evaluation first reduces the
V = temporal clips x spatial crops views of each video to one row with
:func:`average_views`.

Every malformed input (wrong rank, mismatched batch sizes, an empty batch, a label out
of range) raises :class:`~tokbench.errors.TokbenchError` with the offending shapes in the
message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from tokbench.errors import TokbenchError

__all__ = [
    "average_views",
    "merge_views",
    "AGGREGATIONS",
    "check_aggregation",
    "topk_accuracy",
    "average_precision_per_class",
    "mean_average_precision",
    "verb_noun_accuracy",
    "compute_metrics",
    "TASKS",
]

TASKS = ("single", "multilabel", "verb_noun")


def _shape(x: Tensor) -> str:
    """``(4, 5)``, ``(3,)``: a tensor's shape as a Python tuple prints."""
    return str(tuple(x.shape))


def _need_2d(x: Tensor, name: str, what: str) -> None:
    if not isinstance(x, Tensor):
        raise TokbenchError(f"{name} must be a torch.Tensor {what}, got {type(x).__name__}")
    if x.dim() != 2:
        raise TokbenchError(f"{name} must be 2-D {what}, got shape {_shape(x)}")
    if x.shape[0] == 0:
        raise TokbenchError(f"{name} is an empty batch, shape {_shape(x)}: nothing to evaluate")
    if x.shape[1] == 0:
        raise TokbenchError(f"{name} has no classes, shape {_shape(x)}")


def _need_labels(labels: Tensor, logits: Tensor, lname: str, sname: str) -> Tensor:
    """Check integer class labels (B,) against scores (B, C); return them as int64."""
    if not isinstance(labels, Tensor):
        raise TokbenchError(f"{lname} must be a torch.Tensor of shape (B,), got {type(labels).__name__}")
    if labels.dim() != 1 or labels.shape[0] != logits.shape[0]:
        raise TokbenchError(
            f"{lname} must have shape (B,) = ({logits.shape[0]},) to match {sname} {_shape(logits)}, got {_shape(labels)}"
        )
    if labels.is_floating_point() and not torch.equal(labels, labels.round()):
        raise TokbenchError(f"{lname} must hold integer class ids, got non-integer values (dtype {labels.dtype})")
    labels = labels.long()
    C = logits.shape[1]
    if bool(((labels < 0) | (labels >= C)).any()):
        bad = labels[(labels < 0) | (labels >= C)][0].item()
        raise TokbenchError(f"{lname} holds class {bad}, outside [0, {C}) for {sname} {_shape(logits)}")
    return labels


# --------------------------------------------------------------------------- views


def average_views(logits: Tensor, views: int, *, space: Literal["logits", "probs"] = "logits") -> Tensor:
    """Reduce the V views of each video to one row by averaging.

    Args:
        logits: ``(B*V, C)`` with each video's V views in consecutive rows (video-major:
            rows ``b*V .. b*V+V-1`` are video ``b``, as ``to_views`` stacks them and a
            ``(B, V, ...)`` batch flattens), or ``(B, V, C)``.
        views: V, the number of views per video (temporal clips x spatial crops).
        space: ``"logits"`` (default) averages the raw logits; ``"probs"`` averages
            ``softmax(logits)`` over classes per view (the VideoMAE protocol, see below).

    Returns:
        ``(B, C)``, the mean over views (logits, or probabilities with ``space="probs"``).
        ``views=1`` on a ``(B, C)`` input returns the input unchanged (same values).

    Logits vs probabilities: averaging logits (the geometric mean of the per-view
    softmaxes, renormalised) and averaging softmax probabilities (the arithmetic mean)
    rank classes differently when views disagree, so top-1 can move slightly (usually
    by a few tenths of a point). **tokbench averages logits** by default; pass
    ``space="probs"`` to reproduce VideoMAE's numbers.

    What VideoMAE does (MCG-NJU/VideoMAE, ``engine_for_finetuning.py``): ``final_test``
    writes one line per view with the raw head output (logits, ``output.data[i]``) and
    its ``chunk_nb``/``split_nb`` (temporal clip / spatial crop); ``merge`` reads them
    back, applies ``scipy.special.softmax`` to each view's vector (``data =
    softmax(data)``), skips duplicate (chunk, split) views, and ``compute_video`` takes
    ``np.mean`` of those per-view **softmax probabilities** before ``argmax`` (top-1)
    and ``argsort`` (top-5). So VideoMAE averages probabilities, not logits.
    """
    if not isinstance(views, int) or isinstance(views, bool) or views < 1:
        raise TokbenchError(f"views must be a positive int, got {views!r}")
    if space not in ("logits", "probs"):
        raise TokbenchError(f"space must be 'logits' or 'probs', got {space!r}")
    if not isinstance(logits, Tensor):
        raise TokbenchError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if logits.dim() == 3:
        if logits.shape[1] != views:
            raise TokbenchError(f"logits of shape (B, V, C) = {_shape(logits)} do not have V = {views} views")
        x = logits
    elif logits.dim() == 2:
        if logits.shape[0] % views:
            raise TokbenchError(
                f"logits of shape (B*V, C) = {_shape(logits)}: {logits.shape[0]} rows are not a multiple of views = {views}"
            )
        x = logits.reshape(logits.shape[0] // views, views, logits.shape[1])
    else:
        raise TokbenchError(f"logits must be (B*V, C) or (B, V, C), got shape {_shape(logits)}")
    if x.shape[0] == 0:
        raise TokbenchError(f"logits are an empty batch, shape {_shape(logits)}: nothing to evaluate")
    if x.shape[2] == 0:
        raise TokbenchError(f"logits have no classes, shape {_shape(logits)}")
    if not x.is_floating_point():
        x = x.float()
    if space == "probs":
        x = x.softmax(dim=-1)
    return x.mean(dim=1)


#: View aggregations: what a protocol does with the V outputs of a video.
AGGREGATIONS = ("logits", "softmax", "sigmoid-max")
#: Aggregations that suit each task (softmax over classes means nothing for multi-label;
#: sigmoid scores of one view are what a multi-label head gives at test time).
_TASK_AGGREGATIONS = {"single": ("logits", "softmax"), "verb_noun": ("logits", "softmax"),
                      "multilabel": ("logits", "sigmoid-max")}


def check_aggregation(aggregation: str, task: str, *, where: str = "view aggregation") -> None:
    """Raises TokbenchError unless ``aggregation`` is known and suits ``task``."""
    valid = _TASK_AGGREGATIONS.get(task, AGGREGATIONS)
    if aggregation not in valid:
        raise TokbenchError(f"{where}: aggregation {aggregation!r} does not suit the {task} task; "
                            f"valid: {', '.join(valid)}")


def merge_views(logits: Tensor, views: int, how: str = "logits", *, groups: Sequence[int] | None = None) -> Tensor:
    """Merge the V views of each video into one row of scores.

    Args:
        logits: ``(B*V, C)`` video-major (as :func:`average_views`) or ``(B, V, C)``.
        views: V.
        how: ``"logits"``: mean of the logits (tokbench's default, the synthetic suite);
            ``"softmax"``: mean of each view's softmax probabilities (VideoMAE's
            ``engine_for_finetuning.py:merge``, mmaction's ``average_clips='prob'``,
            Motionformer's summed softmax); ``"sigmoid-max"``: per class, the maximum over
            views of the sigmoid (SlowFast's Charades test: ``HEAD_ACT: sigmoid``,
            ``ENSEMBLE_METHOD: max``).
        groups: column widths softmaxed separately (verb+noun heads: ``(num_verbs,
            num_nouns)``, as Motionformer softmaxes each head); ``None``: all columns.

    Returns:
        ``(B, C)`` scores: logits, probabilities, or per-class sigmoid maxima. Only their
        order per row (top-k) or per column (mAP) is used by the metrics.
    """
    if how not in AGGREGATIONS:
        raise TokbenchError(f"view aggregation must be one of {', '.join(AGGREGATIONS)}, got {how!r}")
    if how == "logits":
        return average_views(logits, views)
    average_views(logits, views)  # the same shape checks (one-line TokbenchErrors)
    x = (logits if logits.dim() == 3 else logits.reshape(-1, views, logits.shape[-1])).float()  # (B, V, C)
    if how == "sigmoid-max":
        return x.sigmoid().amax(dim=1)
    widths = list(groups) if groups is not None else [x.shape[-1]]
    if sum(widths) != x.shape[-1] or any(w < 1 for w in widths):
        raise TokbenchError(f"softmax groups {widths} do not split {x.shape[-1]} columns")
    probs = torch.cat([part.softmax(dim=-1) for part in x.split(widths, dim=-1)], dim=-1)
    return probs.mean(dim=1)


# --------------------------------------------------------------------------- single-label


def topk_accuracy(logits: Tensor, labels: Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-k accuracy: the fraction of samples whose label is among the k highest scores.

    Args:
        logits: ``(B, C)`` scores (logits or probabilities; only the order matters).
        labels: ``(B,)`` integer class ids in ``[0, C)``.
        ks: the k values; each gives the key ``f"top{k}"``.

    Returns:
        ``{"top1": float, "top5": float}`` (one key per k), each in [0, 1].

    A k larger than C is clamped to C (so ``top5`` with 3 classes is 1.0): the key keeps
    the requested k. Ties are broken by :func:`torch.topk`: when several classes share
    the k-th highest score, which of them count as "in the top k" is torch's choice
    (implementation-defined; not guaranteed to favour the lower class id).
    """
    _need_2d(logits, "logits", "(B, C)")
    labels = _need_labels(labels, logits, "labels", "logits")
    ks = tuple(ks)
    if not ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in ks):
        raise TokbenchError(f"ks must be positive ints, got {ks!r}")
    C = logits.shape[1]
    kmax = min(max(ks), C)
    top = logits.topk(kmax, dim=1).indices  # (B, kmax), best first
    hit = top == labels[:, None]  # (B, kmax)
    return {f"top{k}": hit[:, : min(k, C)].any(dim=1).double().mean().item() for k in ks}


# --------------------------------------------------------------------------- multi-label


def average_precision_per_class(scores: Tensor, targets: Tensor) -> Tensor:
    """Average precision of each class, the scikit-learn ``average_precision_score`` definition.

    Args:
        scores: ``(B, C)`` real scores (logits or probabilities; only the order matters).
        targets: ``(B, C)`` multi-hot, values 0/1 (bool, int or float).

    Returns:
        ``(C,)`` float64: AP of each class, NaN for a class with no positive sample.

    For one class, rank the samples by descending score; each distinct score value is a
    threshold n, with precision P_n and recall R_n of "score >= threshold"; then

        AP = sum_n (R_n - R_{n-1}) * P_n,   R_0 = 0

    with no interpolation (not the area under a linearly interpolated PR curve, not
    the 11-point VOC AP). **Ties:** samples with equal scores form one threshold, as in
    scikit-learn: the positives in a tied group all get the precision of the whole
    group, so the order of tied samples never changes the result. E.g. scores
    (0.9, 0.5, 0.5) with targets (0, 1, 0): one threshold at 0.9 (P=0, R=0), one at 0.5
    taking both tied samples (P=1/3, R=1), so AP = 1/3 (breaking the tie in favour of
    the positive would give 1/2, against it 1/3).
    """
    _need_2d(scores, "scores", "(B, C)")
    if not isinstance(targets, Tensor):
        raise TokbenchError(f"targets must be a torch.Tensor of shape (B, C), got {type(targets).__name__}")
    if targets.shape != scores.shape:
        raise TokbenchError(f"targets {_shape(targets)} must have the shape of scores {_shape(scores)}")
    t = targets.double()
    if not bool(((t == 0) | (t == 1)).all()):
        raise TokbenchError(f"targets {_shape(targets)} must be multi-hot (0/1 values only)")
    s = scores.double()
    if bool(torch.isnan(s).any()):
        raise TokbenchError(f"scores {_shape(scores)} contain NaN")

    B = s.shape[0]
    s_sorted, order = s.sort(dim=0, descending=True, stable=True)  # (B, C)
    t_sorted = t.gather(0, order)  # (B, C)
    tp = t_sorted.cumsum(dim=0)  # true positives among the first i+1 ranked samples
    rank = torch.arange(1, B + 1, dtype=torch.float64)[:, None]  # (B, 1)
    precision = tp / rank  # precision after the first i+1 samples

    # A position ends its group of tied scores when the next score differs (or it is last).
    group_end = torch.ones_like(s_sorted, dtype=torch.bool)
    group_end[:-1] = s_sorted[:-1] != s_sorted[1:]
    # For every position, the index of the end of its group: reverse cumulative min over
    # the end indices (B for positions that are not an end).
    idx = torch.arange(B)[:, None].expand_as(s_sorted)
    end_idx = torch.where(group_end, idx, torch.full_like(idx, B))
    end_of = end_idx.flip(0).cummin(dim=0).values.flip(0)  # (B, C)
    precision_at_group = precision.gather(0, end_of)  # (B, C)

    # Recall rises by 1/P at each positive, weighted by its threshold's precision.
    positives = t.sum(dim=0)  # (C,)
    ap = (t_sorted * precision_at_group).sum(dim=0) / positives
    return torch.where(positives > 0, ap, torch.full_like(ap, float("nan")))


def mean_average_precision(scores: Tensor, targets: Tensor) -> float:
    """Mean over classes of :func:`average_precision_per_class`, skipping classes with no positive.

    Args:
        scores: ``(B, C)`` real scores.
        targets: ``(B, C)`` multi-hot 0/1.

    Returns:
        mAP in [0, 1]: the unweighted (macro) mean of per-class AP over the classes that
        have at least one positive in ``targets`` (the usual Charades video-level mAP;
        a class absent from the evaluated set has undefined AP and is left out).

    Raises:
        TokbenchError: bad shapes, non-binary targets, NaN scores, or no class with a
        positive at all (mAP undefined).
    """
    ap = average_precision_per_class(scores, targets)
    valid = ~torch.isnan(ap)
    if not bool(valid.any()):
        raise TokbenchError(f"no class has a positive target in targets {_shape(targets)}: mAP is undefined")
    return ap[valid].mean().item()


# --------------------------------------------------------------------------- verb + noun


def verb_noun_accuracy(verb_logits: Tensor, noun_logits: Tensor, verbs: Tensor, nouns: Tensor) -> dict[str, float]:
    """EPIC-Kitchens-100 top-1 accuracies of verb, noun and action (the (verb, noun) pair).

    Args:
        verb_logits: ``(B, V)`` verb scores.
        noun_logits: ``(B, N)`` noun scores.
        verbs: ``(B,)`` verb class ids in ``[0, V)``.
        nouns: ``(B,)`` noun class ids in ``[0, N)``.

    Returns:
        ``{"verb_top1", "noun_top1", "action_top1"}`` in [0, 1]. A sample's action is
        correct iff **both** its verb argmax and its noun argmax are correct.

    Ties: :func:`torch.argmax` returns the first (lowest) index among tied maxima.

    EPIC's official scorer (epic-kitchens/C1-Action-Recognition: ``evaluate.py`` with
    ``utils/scoring.py::compute_action_scores`` and ``utils/actions.py``) scores an action
    (verb, noun) by the product of the verb softmax and the noun softmax (over each
    segment's top-100 verbs and nouns), ranks the pairs by that product and compares
    with the action id ``verb * 1000 + noun``. Since every probability is positive, the
    highest product is the pair (argmax verb, argmax noun), so its action top-1 is this
    joint-argmax definition (tied maxima aside). Its action *top-5* ranks the products
    of pairs, which is not the same as taking top-5 verbs and nouns separately; this
    function reports top-1 only.
    """
    _need_2d(verb_logits, "verb_logits", "(B, V)")
    _need_2d(noun_logits, "noun_logits", "(B, N)")
    if verb_logits.shape[0] != noun_logits.shape[0]:
        raise TokbenchError(f"verb_logits {_shape(verb_logits)} and noun_logits {_shape(noun_logits)} have different batch sizes")
    verbs = _need_labels(verbs, verb_logits, "verbs", "verb_logits")
    nouns = _need_labels(nouns, noun_logits, "nouns", "noun_logits")
    verb_ok = verb_logits.argmax(dim=1) == verbs
    noun_ok = noun_logits.argmax(dim=1) == nouns
    return {
        "verb_top1": verb_ok.double().mean().item(),
        "noun_top1": noun_ok.double().mean().item(),
        "action_top1": (verb_ok & noun_ok).double().mean().item(),
    }


# --------------------------------------------------------------------------- dispatcher


def compute_metrics(
    task: str,
    logits: Tensor,
    labels: Tensor | None = None,
    *,
    verbs: Tensor | None = None,
    nouns: Tensor | None = None,
    num_verbs: int | None = None,
    num_nouns: int | None = None,
    views: int = 1,
    ks: Sequence[int] = (1, 5),
) -> dict[str, float]:
    """The metrics of a dataset's task, as a flat ``{name: float}`` dict.

    Args:
        task: ``"single"``, ``"multilabel"`` or ``"verb_noun"`` (a dataset card's ``task``).
        logits: ``(B, C)`` model outputs; with ``views > 1``, ``(B*V, C)`` (video-major)
            or ``(B, V, C)``, first reduced by :func:`average_views` (logit averaging).
            For ``verb_noun``, ``C = num_verbs + num_nouns`` with the verb logits first.
        labels: ``single``: ``(B,)`` class ids; ``multilabel``: ``(B, C)`` multi-hot;
            ``verb_noun``: not used (the action id; may be passed or left ``None``).
        verbs, nouns: ``verb_noun`` only: ``(B,)`` verb and noun class ids.
        num_verbs: ``verb_noun`` only: the width of the verb block of ``logits``.
        num_nouns: ``verb_noun`` only, optional: checked against the remaining width.
        views: V, views per video (1: no averaging).
        ks: the k of top-k for ``single``.

    Returns:
        ``single``: ``{"top1", "top5"}`` (one ``top{k}`` per k); ``multilabel``:
        ``{"mAP"}``; ``verb_noun``: ``{"verb_top1", "noun_top1", "action_top1"}``. The
        card's headline metric (``DatasetCard.metric``) is always among the keys.
    """
    if task not in TASKS:
        raise TokbenchError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    if not isinstance(logits, Tensor):
        raise TokbenchError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if views != 1 or logits.dim() == 3:
        logits = average_views(logits, views)
    if task == "single":
        if labels is None:
            raise TokbenchError("task 'single' needs labels of shape (B,)")
        return topk_accuracy(logits, labels, ks)
    if task == "multilabel":
        if labels is None:
            raise TokbenchError("task 'multilabel' needs multi-hot labels of shape (B, C)")
        return {"mAP": mean_average_precision(logits, labels)}
    # verb_noun
    if verbs is None or nouns is None or num_verbs is None:
        raise TokbenchError("task 'verb_noun' needs verbs, nouns (B,) and num_verbs")
    _need_2d(logits, "logits", "(B, num_verbs + num_nouns)")
    width = logits.shape[1]
    if not 0 < num_verbs < width or (num_nouns is not None and num_verbs + num_nouns != width):
        raise TokbenchError(f"logits {_shape(logits)} do not split into num_verbs={num_verbs} + num_nouns={num_nouns} columns")
    return verb_noun_accuracy(logits[:, :num_verbs], logits[:, num_verbs:], verbs, nouns)
