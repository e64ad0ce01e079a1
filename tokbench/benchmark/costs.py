"""``tokbench flops``: the cost table of methods across P-Ratios, planned as ``tokbench run``
plans a cost-only sweep (the same validation, the same cells), counted and never stored."""

from __future__ import annotations

from tokbench.benchmark.flops import cached_flops
from tokbench.benchmark.runner import Sweep, plan
from tokbench.errors import TokbenchError, UnreachableError
from tokbench.methods import METHODS, build_method

__all__ = ["cost_rows"]

CONTENT = "depends on the clips: measure it with tokbench run --metrics flops (calibrated on a dataset's clips)"


def cost_rows(backbones: tuple[str, ...], methods: tuple[str, ...], p_ratios: tuple[float, ...], *,
              checkpoint: str | None = None, num_classes: int | None = None) -> list[dict]:
    """One row per cell: backbone, method, P, tokens kept, GFLOPs (fvcore's convention),
    parameters (M), which tubelets the patch embedding sees, and the status (``ok``, why the
    cost depends on the clips, or why the P is unreachable).

    Raises:
        TokbenchError: anything ``tokbench run`` refuses while planning.
    """
    if not backbones:
        raise TokbenchError("empty --backbone: give backbone names, e.g. videomae_b (see 'tokbench ls backbones')")
    cells = plan(Sweep(backbones=backbones, methods=methods, p_ratios=p_ratios, metrics=("flops",),
                       checkpoint=checkpoint, num_classes=num_classes, device="cpu"))
    rows = []
    for cell in cells:
        cls = METHODS.get(cell.method_name)
        row = {"backbone": cell.backbone, "method": cell.method_id, "p_ratio": cell.p_ratio, "tokens_kept": "",
               "gflops": "", "params_m": "", "embeds": cls.embeds, "status": "ok"}
        if cls.cost_depends_on_content or cls.needs_calibration:
            row["status"] = CONTENT
        else:
            try:
                count = cached_flops(cell.config, build_method(cell.method_spec, p_ratio=cell.p_ratio))
            except UnreachableError as e:  # reported, never clamped
                row["status"] = f"unreachable: {e}"
            else:
                kept = round(count.tokens_per_block[0] - cell.config.n_prefix, 2)
                row.update(tokens_kept=int(kept) if float(kept).is_integer() else kept,
                           gflops=round(count.gflops, 4), params_m=round(count.params / 1e6, 3))
        rows.append(row)
    return rows
