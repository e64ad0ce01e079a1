"""The table ``tokbench run`` prints after a sweep: one row per record."""

from __future__ import annotations

from tokbench.report.text import text_table

__all__ = ["run_summary", "speed_warning"]


def _int_or_float(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def run_summary(records: list[dict]) -> str:
    """Dataset, backbone, method, P, status, the headline accuracy (with its interval), tokens
    kept, GFLOPs, parameters, clips/s with its spread and flags, and the error of a failed cell."""
    rows = []
    for r in records:
        row = {"dataset": r["dataset"]} if r.get("dataset") else {}
        row.update(backbone=r["backbone"], method=r["method_id"], P=f"{r['p_ratio']:g}", status=r["status"])
        for metric in ("top1", "mAP", "action_top1"):
            if r.get(metric) is not None:
                interval = ""
                if r.get(f"{metric}_lo") is not None:
                    interval = f" [{100 * r[f'{metric}_lo']:.1f}, {100 * r[f'{metric}_hi']:.1f}]"
                row["accuracy"] = f"{metric} {100 * r[metric]:.1f}{interval}"
        if r.get("skipped_videos"):
            row["skipped"] = str(r["skipped_videos"])
        if "gflops" in r:
            row.update(tokens=_int_or_float(r["tokens_kept"]), GFLOPs=f"{r['gflops']:.4g}", params_M=f"{r['params_m']:.4g}")
        if "clips_per_s" in r:
            row.update(**{"clips/s": f"{r['clips_per_s']:.2f}", "ms/clip": f"{r['ms_per_clip']:.1f}"})
            if r.get("speed_spread") is not None:
                row["spread"] = f"{r['speed_spread']:.0%}" + "".join(f" {f}" for f in r.get("speed_flags") or ())
        if r["status"] != "ok":
            row["error"] = (r.get("error") or "")[:80]
        rows.append(row)
    cols: list[str] = []
    for row in rows:
        cols += [c for c in row if c not in cols]
    return text_table([{c: row.get(c, "") for c in cols} for row in rows])


def speed_warning(records: list[dict]) -> str | None:
    """One line when some records were timed on a busy machine or with a wide spread."""
    flagged = [r for r in records if r.get("speed_flags")]
    if not flagged:
        return None
    return (f"{len(flagged)} of {len(records)} cells were timed while the machine was busy or with a spread over 25 % "
            "(speed_flags; 'spread' column): their throughput is not comparable; re-run them on a quiet machine")
