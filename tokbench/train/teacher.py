"""The zoo backbone of a synthetic dataset as the frozen teacher the trainers of learned
methods (LITE, LITE++, LookWhen, the image teacher) start from."""

from __future__ import annotations

from tokbench.backbones import create_backbone
from tokbench.errors import TokbenchError
from tokbench.zoo import zoo_card, zoo_checkpoint, zoo_datasets

__all__ = ["zoo_teacher"]


def zoo_teacher(dataset: str, *, trainer: str):
    """The shipped backbone of a synthetic dataset, for the trainers of learned methods:
    (its card, the model frozen in eval mode, the clip geometry ``{"frames", "size"}``).

    Raises:
        TokbenchError: no zoo backbone for ``dataset``.
    """
    if dataset not in zoo_datasets():
        raise TokbenchError(f"train {trainer} works on the synthetic suite's zoo backbones; "
                            f"no zoo backbone for {dataset!r}")
    card = zoo_card(dataset)
    model = create_backbone(card["backbone"], checkpoint=zoo_checkpoint(dataset),
                            num_classes=card["config"]["num_classes"]).eval()
    model.requires_grad_(False)
    return card, model, {"frames": card["data"]["frames"], "size": card["data"]["size"]}
