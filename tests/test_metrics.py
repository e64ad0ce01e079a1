"""tokbench.data.metrics: hand-worked examples, a naive AP reference, shape errors."""

from __future__ import annotations

import math
import random

import pytest
import torch

from tokbench.data.metrics import (
    average_precision_per_class,
    average_views,
    compute_metrics,
    mean_average_precision,
    topk_accuracy,
    verb_noun_accuracy,
)
from tokbench.errors import TokbenchError

# --------------------------------------------------------------------------- top-k

# 4 samples x 6 classes. Rank of the label among the scores (1 = best):
#   s0: label 1, score 0.9 is the highest            -> rank 1
#   s1: label 4, order 0(.8) 2(.7) 3(.6) 4(.5)         -> rank 4
#   s2: label 0, the lowest of six                   -> rank 6
#   s3: label 5, order 4(.9) 5(.8)                    -> rank 2
# top1 = 1/4; top2 = top3 = 2/4; top4 = top5 = 3/4; top6 = 4/4.
TOPK_LOGITS = torch.tensor(
    [
        [0.1, 0.9, 0.3, 0.2, 0.05, 0.0],
        [0.8, 0.1, 0.7, 0.6, 0.5, 0.4],
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        [0.3, 0.2, 0.1, 0.0, 0.9, 0.8],
    ]
)
TOPK_LABELS = torch.tensor([1, 4, 0, 5])


def test_topk_hand_example():
    assert topk_accuracy(TOPK_LOGITS, TOPK_LABELS) == {"top1": 0.25, "top5": 0.75}
    got = topk_accuracy(TOPK_LOGITS, TOPK_LABELS, ks=(1, 2, 3, 4, 5, 6))
    assert got == {"top1": 0.25, "top2": 0.5, "top3": 0.5, "top4": 0.75, "top5": 0.75, "top6": 1.0}
    assert all(isinstance(v, float) for v in got.values())


def test_topk_probabilities_give_the_same_answer_as_logits():
    assert topk_accuracy(TOPK_LOGITS.softmax(-1), TOPK_LABELS) == topk_accuracy(TOPK_LOGITS, TOPK_LABELS)


def test_topk_k_above_num_classes_clamps():
    logits = torch.tensor([[0.1, 0.2, 0.7], [0.9, 0.05, 0.05]])
    labels = torch.tensor([0, 2])  # both wrong at top-1, both within all 3 classes
    assert topk_accuracy(logits, labels) == {"top1": 0.0, "top5": 1.0}
    assert topk_accuracy(logits, labels, ks=(3, 5, 100)) == {"top3": 1.0, "top5": 1.0, "top100": 1.0}


def test_topk_float_labels_accepted_when_integral():
    assert topk_accuracy(TOPK_LOGITS, TOPK_LABELS.float()) == {"top1": 0.25, "top5": 0.75}


# --------------------------------------------------------------------------- AP / mAP

# 5 samples x 3 classes; class 2 has no positive and is left out of the mean.
MAP_SCORES = torch.tensor(
    [
        [0.9, 0.1, 0.5],
        [0.8, 0.7, 0.4],
        [0.3, 0.6, 0.3],
        [0.2, 0.9, 0.2],
        [0.1, 0.2, 0.1],
    ]
)
MAP_TARGETS = torch.tensor(
    [
        [1, 0, 0],
        [0, 1, 0],
        [1, 0, 0],
        [0, 0, 0],
        [0, 1, 0],
    ]
)
# class 0, ranked s0(+) s1(-) s2(+) s3(-) s4(-), 2 positives:
#   threshold s0: P = 1/1, R = 1/2 -> 1/2 * 1 = 1/2
#   threshold s1: P = 1/2, R = 1/2 -> no recall gain
#   threshold s2: P = 2/3, R = 2/2 -> 1/2 * 2/3 = 1/3        AP0 = 5/6
# class 1, ranked s3(-) s1(+) s2(-) s4(+) s0(-), 2 positives:
#   s1: P = 1/2, R = 1/2 -> 1/4;  s4: P = 2/4, R = 1 -> 1/4   AP1 = 1/2
# class 2: no positive -> NaN, excluded.            mAP = (5/6 + 1/2) / 2 = 2/3


def test_map_hand_example():
    ap = average_precision_per_class(MAP_SCORES, MAP_TARGETS)
    assert ap.shape == (3,) and ap.dtype == torch.float64
    assert ap[0].item() == pytest.approx(5 / 6)
    assert ap[1].item() == pytest.approx(1 / 2)
    assert math.isnan(ap[2].item())
    assert mean_average_precision(MAP_SCORES, MAP_TARGETS) == pytest.approx(2 / 3)
    assert compute_metrics("multilabel", MAP_SCORES, MAP_TARGETS) == {"mAP": pytest.approx(2 / 3)}


def test_ap_known_values():
    # perfect ranking: every positive above every negative
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.7], [0.2, 0.8], [0.1, 0.9]])
    targets = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 1]])
    assert average_precision_per_class(scores, targets).tolist() == [1.0, 1.0]
    assert mean_average_precision(scores, targets) == 1.0
    # one positive ranked 2nd of 4: P = 1/2 at the only recall step
    second = average_precision_per_class(torch.tensor([[0.4], [0.3], [0.2], [0.1]]), torch.tensor([[0], [1], [0], [0]]))
    assert second.item() == 0.5
    # the example of scikit-learn's average_precision_score documentation: 0.8333...
    sk = average_precision_per_class(torch.tensor([[0.1], [0.4], [0.35], [0.8]]), torch.tensor([[0], [0], [1], [1]]))
    assert sk.item() == pytest.approx(0.83333333)
    # every sample positive: AP = 1 whatever the scores
    assert average_precision_per_class(torch.rand(6, 1), torch.ones(6, 1)).item() == 1.0


def test_ap_ties_form_one_threshold():
    # scores (0.9, 0.5, 0.5), targets (0, 1, 0). Thresholds: 0.9 -> P=0, R=0;
    # 0.5 takes both tied samples -> P=1/3, R=1. AP = (1 - 0) * 1/3 = 1/3.
    # (Ranking the positive first inside the tie would give 1/2; last, 1/3 by luck.)
    scores = torch.tensor([[0.9], [0.5], [0.5]])
    assert average_precision_per_class(scores, torch.tensor([[0], [1], [0]])).item() == pytest.approx(1 / 3)
    # the order of the tied samples does not matter
    assert average_precision_per_class(scores, torch.tensor([[0], [0], [1]])).item() == pytest.approx(1 / 3)
    # a tie at the top: (0.5, 0.5, 0.1), targets (0, 1, 1). 0.5 -> P=1/2, R=1/2; 0.1 -> P=2/3, R=1.
    # AP = 1/2 * 1/2 + 1/2 * 2/3 = 7/12 (positive-first inside the tie would give 1/2 + 1/3 = 5/6)
    scores = torch.tensor([[0.5], [0.5], [0.1]])
    assert average_precision_per_class(scores, torch.tensor([[0], [1], [1]])).item() == pytest.approx(7 / 12)
    assert average_precision_per_class(scores, torch.tensor([[1], [0], [1]])).item() == pytest.approx(7 / 12)
    # all scores tied: one threshold, AP = precision of everything = positives / B
    assert average_precision_per_class(torch.zeros(5, 1), torch.tensor([[1], [0], [0], [1], [0]])).item() == pytest.approx(2 / 5)


def _naive_ap(scores: list[float], targets: list[int]) -> float:
    """AP straight from the definition: one threshold per distinct score, high to low;
    P_n, R_n of "score >= threshold"; sum (R_n - R_{n-1}) P_n. NaN without positives."""
    positives = sum(targets)
    if positives == 0:
        return float("nan")
    ap, prev_recall = 0.0, 0.0
    for thr in sorted(set(scores), reverse=True):
        chosen = [t for s, t in zip(scores, targets) if s >= thr]
        tp = sum(chosen)
        precision, recall = tp / len(chosen), tp / positives
        ap += (recall - prev_recall) * precision
        prev_recall = recall
    return ap


@pytest.mark.parametrize("seed", range(20))
def test_ap_matches_naive_reference(seed):
    rng = random.Random(seed)
    B, C = rng.randint(1, 30), rng.randint(1, 6)
    decimals = rng.choice([1, 1, 2, 6])  # rounding to 1 decimal makes many ties
    scores = [[round(rng.random(), decimals) for _ in range(C)] for _ in range(B)]
    density = rng.choice([0.1, 0.3, 0.6])
    targets = [[int(rng.random() < density) for _ in range(C)] for _ in range(B)]
    targets[rng.randrange(B)][rng.randrange(C)] = 1  # at least one positive somewhere
    got = average_precision_per_class(torch.tensor(scores), torch.tensor(targets))
    ref = [_naive_ap([row[c] for row in scores], [row[c] for row in targets]) for c in range(C)]
    for c in range(C):
        if math.isnan(ref[c]):
            assert math.isnan(got[c].item()), (seed, c)
        else:
            assert got[c].item() == pytest.approx(ref[c], abs=1e-12), (seed, c)
    valid = [r for r in ref if not math.isnan(r)]
    assert mean_average_precision(torch.tensor(scores), torch.tensor(targets)) == pytest.approx(sum(valid) / len(valid))


def test_ap_accepts_bool_and_float_targets():
    for t in (MAP_TARGETS.bool(), MAP_TARGETS.float()):
        assert mean_average_precision(MAP_SCORES, t) == pytest.approx(2 / 3)


def test_map_without_any_positive_is_an_error():
    with pytest.raises(TokbenchError, match="no class has a positive"):
        mean_average_precision(torch.rand(3, 2), torch.zeros(3, 2))


# --------------------------------------------------------------------------- verb / noun / action

# 4 samples, 3 verbs, 4 nouns:
#   s0: verb 0 right, noun 1 right -> action right
#   s1: verb 1 right, noun wrong (argmax 3, label 2)
#   s2: verb wrong (argmax 0, label 2), noun 0 right
#   s3: verb wrong, noun wrong
VERB_LOGITS = torch.tensor([[5.0, 1.0, 0.0], [0.0, 3.0, 1.0], [2.0, 1.0, 1.5], [0.0, 2.0, 1.0]])
NOUN_LOGITS = torch.tensor([[0.0, 4.0, 1.0, 0.0], [0.0, 0.0, 1.0, 2.0], [3.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
VERBS = torch.tensor([0, 1, 2, 0])
NOUNS = torch.tensor([1, 2, 0, 3])


def test_verb_noun_hand_example():
    got = verb_noun_accuracy(VERB_LOGITS, NOUN_LOGITS, VERBS, NOUNS)
    assert got == {"verb_top1": 0.5, "noun_top1": 0.5, "action_top1": 0.25}


def test_verb_noun_through_compute_metrics_splits_verbs_first():
    logits = torch.cat([VERB_LOGITS, NOUN_LOGITS], dim=1)  # (4, 3 + 4)
    got = compute_metrics("verb_noun", logits, verbs=VERBS, nouns=NOUNS, num_verbs=3, num_nouns=4)
    assert got == {"verb_top1": 0.5, "noun_top1": 0.5, "action_top1": 0.25}
    # num_nouns is optional (inferred from the width)
    assert compute_metrics("verb_noun", logits, verbs=VERBS, nouns=NOUNS, num_verbs=3) == got
    with pytest.raises(TokbenchError, match=r"\(4, 7\)"):
        compute_metrics("verb_noun", logits, verbs=VERBS, nouns=NOUNS, num_verbs=3, num_nouns=5)


def test_action_top1_equals_epic_product_of_softmax_argmax():
    # EPIC's scorer ranks (verb, noun) pairs by softmax(verb) * softmax(noun); its top-1
    # pair is the pair of argmaxes, so its action top-1 is the joint-argmax rule.
    gen = torch.Generator().manual_seed(3)
    verb_logits, noun_logits = torch.randn(64, 5, generator=gen), torch.randn(64, 7, generator=gen)
    verbs, nouns = torch.randint(0, 5, (64,), generator=gen), torch.randint(0, 7, (64,), generator=gen)
    # make about half the verbs and nouns right so both outcomes occur
    verbs[::2] = verb_logits[::2].argmax(1)
    nouns[::3] = noun_logits[::3].argmax(1)
    product = verb_logits.softmax(1)[:, :, None] * noun_logits.softmax(1)[:, None, :]  # (B, 5, 7)
    best = product.flatten(1).argmax(1)
    epic_action = ((best // 7 == verbs) & (best % 7 == nouns)).double().mean().item()
    assert verb_noun_accuracy(verb_logits, noun_logits, verbs, nouns)["action_top1"] == epic_action


# --------------------------------------------------------------------------- views


def test_average_views_flat_layout_by_hand():
    # 2 videos x 2 views x 2 classes, video-major rows
    logits = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    assert torch.equal(average_views(logits, 2), torch.tensor([[2.0, 3.0], [6.0, 7.0]]))


def test_average_views_both_layouts_agree():
    x = torch.randn(3, 5, 7)  # (B, V, C)
    want = x.mean(dim=1)
    assert torch.allclose(average_views(x, 5), want)
    assert torch.allclose(average_views(x.reshape(15, 7), 5), want)
    assert average_views(x, 5).shape == (3, 7)


def test_average_views_one_view_is_identity():
    x = torch.randn(4, 6)
    assert torch.equal(average_views(x, 1), x)
    assert torch.equal(average_views(x[:, None, :], 1), x)


def test_average_views_probs_space_can_change_top1():
    # view A is confident in class 1, view B strongly against it; class 0 is steady.
    logits = torch.tensor([[[1.0, 4.0, 0.0], [1.0, -10.0, 0.0]]])  # (1, 2, 3)
    by_logits = average_views(logits, 2)
    by_probs = average_views(logits, 2, space="probs")
    assert torch.allclose(by_probs, logits.softmax(-1).mean(1))
    assert torch.allclose(by_probs.sum(-1), torch.ones(1))
    assert by_logits.argmax().item() == 0  # mean logits (1, -3, 0)
    assert by_probs.argmax().item() == 1  # mean probs ~ (0.39, 0.47, 0.14)


def test_compute_metrics_averages_views():
    # sample 0: view 1 wrong, view 2 strongly right -> right after averaging
    logits = torch.tensor([[1.0, 0.0], [-5.0, 5.0], [2.0, 0.0], [2.0, 0.0]])
    labels = torch.tensor([1, 0])
    assert compute_metrics("single", logits, labels, views=2, ks=(1,)) == {"top1": 1.0}
    assert compute_metrics("single", logits.reshape(2, 2, 2), labels, views=2, ks=(1,)) == {"top1": 1.0}


def test_compute_metrics_single_keys_match_card_metric():
    got = compute_metrics("single", TOPK_LOGITS, TOPK_LABELS)
    assert got == {"top1": 0.25, "top5": 0.75}


# --------------------------------------------------------------------------- errors


def test_shape_errors_name_the_shapes():
    with pytest.raises(TokbenchError, match=r"\(4, 6\).*\(3,\)"):
        topk_accuracy(TOPK_LOGITS, torch.tensor([0, 1, 2]))
    with pytest.raises(TokbenchError, match=r"\(6,\)"):
        topk_accuracy(torch.rand(6), torch.tensor([0]))
    with pytest.raises(TokbenchError, match=r"\(7, 4\)"):
        average_views(torch.rand(7, 4), 2)
    with pytest.raises(TokbenchError, match=r"\(2, 3, 4\)"):
        average_views(torch.rand(2, 3, 4), 2)
    with pytest.raises(TokbenchError, match=r"targets \(5, 2\).*scores \(5, 3\)"):
        average_precision_per_class(MAP_SCORES, MAP_TARGETS[:, :2])
    with pytest.raises(TokbenchError, match=r"\(4, 3\).*\(3, 4\)"):
        verb_noun_accuracy(VERB_LOGITS, NOUN_LOGITS[:3], VERBS, NOUNS)
    with pytest.raises(TokbenchError, match=r"\(4, 3\).*\(3,\)"):
        verb_noun_accuracy(VERB_LOGITS, NOUN_LOGITS, VERBS[:3], NOUNS)


def test_empty_batch_is_an_error():
    with pytest.raises(TokbenchError, match="empty"):
        topk_accuracy(torch.empty(0, 5), torch.empty(0, dtype=torch.long))
    with pytest.raises(TokbenchError, match="empty"):
        mean_average_precision(torch.empty(0, 3), torch.empty(0, 3))
    with pytest.raises(TokbenchError, match="empty"):
        verb_noun_accuracy(torch.empty(0, 3), torch.empty(0, 4), torch.empty(0), torch.empty(0))
    with pytest.raises(TokbenchError, match="empty"):
        average_views(torch.empty(0, 5), 3)


def test_bad_values_are_errors():
    with pytest.raises(TokbenchError, match=r"class 6.*\[0, 6\)"):
        topk_accuracy(TOPK_LOGITS, torch.tensor([0, 1, 2, 6]))
    with pytest.raises(TokbenchError, match="class -1"):
        topk_accuracy(TOPK_LOGITS, torch.tensor([0, 1, 2, -1]))
    with pytest.raises(TokbenchError, match="integer"):
        topk_accuracy(TOPK_LOGITS, torch.tensor([0.5, 1.0, 2.0, 3.0]))
    with pytest.raises(TokbenchError, match="ks"):
        topk_accuracy(TOPK_LOGITS, TOPK_LABELS, ks=(0,))
    with pytest.raises(TokbenchError, match="multi-hot"):
        average_precision_per_class(MAP_SCORES, MAP_TARGETS * 2)
    with pytest.raises(TokbenchError, match="NaN"):
        average_precision_per_class(torch.tensor([[float("nan")], [0.0]]), torch.tensor([[1], [0]]))
    with pytest.raises(TokbenchError, match="views"):
        average_views(torch.rand(4, 2), 0)
    with pytest.raises(TokbenchError, match="unknown task 'detection'"):
        compute_metrics("detection", TOPK_LOGITS, TOPK_LABELS)
    with pytest.raises(TokbenchError, match="needs labels"):
        compute_metrics("single", TOPK_LOGITS)
    with pytest.raises(TokbenchError, match="num_verbs"):
        compute_metrics("verb_noun", TOPK_LOGITS, verbs=VERBS, nouns=NOUNS)
