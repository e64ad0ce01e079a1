"""Labels as the true-class weights a privileged method reads (LITE's oracle
differentiates y^c = (logits * w).sum(-1))."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["target_weights"]


def target_weights(task: str, labels: Tensor, num_outputs: int, *, num_verbs: int | None = None,
                   verbs: Tensor | None = None, nouns: Tensor | None = None) -> Tensor:
    """(B, num_outputs) weights w such that y^c = (logits * w).sum(-1): one-hot for single
    labels, the multi-hot row for multi-label, verb and noun one-hots for verb + noun."""
    if task == "multilabel":
        return labels.float()
    if task == "verb_noun":
        w = torch.zeros(verbs.shape[0], num_outputs)
        w[torch.arange(verbs.shape[0]), verbs] = 1.0
        w[torch.arange(nouns.shape[0]), num_verbs + nouns] = 1.0
        return w
    return torch.nn.functional.one_hot(labels.long(), num_outputs).float()
