"""Sweep specifications: P-Ratio syntax, metric names, and the key of a cell.

A sweep is the cross product backbone x method x P-Ratio. Each cell is identified by a
stable hash of everything that can change its numbers (:func:`cell_key`), so a re-run
skips cells already in the store.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from tokbench.errors import SpecError

__all__ = ["parse_p_ratios", "parse_metrics", "parse_seeds", "METRICS", "DEFAULT_SEEDS", "cell_key", "P_RATIO_HELP", "DEFAULT_P",
           "MAX_P_RATIOS"]

#: Points one --p-ratio may give: every point is a cell, and a step of 1e-9 once made a
#: list of 800 million (8.8 GB) before anything ran. 1000 is a step of 0.001 over (0, 1].
MAX_P_RATIOS = 1000

METRICS = ("accuracy", "flops", "throughput")

P_RATIO_HELP = (
    "P-Ratio (fraction of patch tokens kept, in (0, 1]): a value '0.5', a list "
    "'0.3,0.5,0.7', a range 'start:stop' (step 0.1, stop included) or 'start:stop:step'"
)


def _number(text: str, what: str, spec: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise SpecError(f"malformed --p-ratio {spec!r}: {what} {text.strip()!r} is not a number. {P_RATIO_HELP}") from None
    if not value.is_finite():
        raise SpecError(f"malformed --p-ratio {spec!r}: {what} must be finite")
    return value


def _check_ratio(value: Decimal, spec: str) -> float:
    if not Decimal(0) < value <= Decimal(1):
        raise SpecError(f"--p-ratio {spec!r}: {value} is outside (0, 1]; P-Ratio is the fraction of tokens kept")
    return float(value)


def _check_count(n: int, spec: str) -> None:
    if n > MAX_P_RATIOS:
        count = f"{n}" if n < 10**9 else "over a billion"
        raise SpecError(f"--p-ratio {spec!r} gives {count} points; at most {MAX_P_RATIOS} are allowed (each is a cell "
                        "to measure): use a larger step")


def parse_p_ratios(spec: str) -> list[float]:
    """Parse P-Ratio syntax into a list of floats, in order, without duplicates.

    ``"0.1:0.9"`` -> [0.1, 0.2, ..., 0.9]; ``"0.1:0.9:0.2"`` -> [0.1, 0.3, 0.5, 0.7, 0.9];
    ``"0.3,0.5,0.7"``; ``"0.5"``. Ranges are computed in decimal, so 0.1 + 0.2 is 0.3.

    Raises:
        SpecError: malformed text, a value outside (0, 1], a step <= 0, start > stop,
            more than :data:`MAX_P_RATIOS` points.
    """
    spec = spec.strip()
    if not spec:
        raise SpecError(f"empty --p-ratio. {P_RATIO_HELP}")
    if ":" in spec:
        parts = spec.split(":")
        if len(parts) not in (2, 3):
            raise SpecError(f"malformed --p-ratio {spec!r}: a range is start:stop or start:stop:step")
        start = _number(parts[0], "start", spec)
        stop = _number(parts[1], "stop", spec)
        step = _number(parts[2], "step", spec) if len(parts) == 3 else Decimal("0.1")
        if step <= 0:
            raise SpecError(f"--p-ratio {spec!r}: step must be > 0, got {step}")
        if start > stop:
            raise SpecError(f"--p-ratio {spec!r}: start {start} is greater than stop {stop}")
        _check_ratio(start, spec)
        _check_ratio(stop, spec)
        try:
            n = int((stop - start) / step)  # whole steps that fit
        except ArithmeticError:  # decimal overflow: a step like 1e-9999999
            n = 10**12  # reported as "over a billion"
        _check_count(n + 1, spec)  # before the list is made
        values = [start + i * step for i in range(n + 1)]
    else:
        parts = spec.split(",")
        _check_count(len(parts), spec)
        values = [_number(part, "value", spec) for part in parts]
    out: list[float] = []
    for v in values:
        ratio = _check_ratio(v, spec)
        if ratio not in out:
            out.append(ratio)
    return out


def parse_metrics(spec: str) -> tuple[str, ...]:
    """``"flops,throughput"`` -> ("flops", "throughput"); unknown names raise."""
    names = [m.strip() for m in spec.split(",") if m.strip()]
    if not names:
        raise SpecError(f"empty --metrics: choose from {', '.join(METRICS)}")
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise SpecError(f"unknown metric {unknown[0]!r}: choose from {', '.join(METRICS)}")
    return tuple(m for m in METRICS if m in names)


def cell_key(fields: dict[str, Any]) -> str:
    """Stable 16-hex-digit id of a cell from the fields that determine its results."""
    blob = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


#: The P-Ratios of a sweep that does not name them: LITE's (Hao et al., ICCV 2025, Tables
#: 1-2: 0.9 / 0.7 / 0.5 / 0.3) and 0.1, where the methods differ most. Five points keep the
#: embedded default run (14 methods, 3 seeds of random drop, 6 datasets of 500 clips) within
#: 15 minutes on two CPU cores; ``--p-ratio 0.1:0.9`` gives the nine-point grid.
DEFAULT_P = "0.1,0.3,0.5,0.7,0.9"

#: Seeds of the stochastic methods in the default run: three, so that intervals and paired
#: tests see the seed variance (one seed of random drop at P = 0.3 moved by 8 points).
DEFAULT_SEEDS = (0, 1, 2)


def parse_seeds(spec: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> (0, 1, 2): distinct non-negative integers below 2**63, in order.

    Raises:
        SpecError: an empty list, a value that is not such an integer, or a repeat.
    """
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise SpecError("empty --seeds: give seeds as 0,1,2")
    seeds = []
    for part in parts:
        if not part.isdigit() or int(part) >= 2**63:
            raise SpecError(f"--seeds {spec!r}: {part!r} is not a seed (a non-negative integer below 2**63)")
        if int(part) in seeds:
            raise SpecError(f"--seeds {spec!r}: seed {int(part)} is given twice")
        seeds.append(int(part))
    return tuple(seeds)
