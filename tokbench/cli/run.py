"""``tokbench run`` and ``tokbench flops``: measure a sweep, or count its cost."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from tokbench.benchmark.spec import DEFAULT_P
from tokbench.cli import SEED, cli
from tokbench.errors import TokbenchError
from tokbench.report.text import text_table

# -- shared options ----------------------------------------------------------------------

def _sweep_options(func):
    options = [
        click.option("--backbone", "backbones", default=None,
                     help="Backbone variant(s), comma-separated (see 'tokbench ls backbones') "
                          "[default: synth_tiny for the synthetic suite, else videomae_s]."),
        click.option("--methods", default=None,
                     help="Method specs, comma-separated, e.g. 'none,random(seed=1)' [default: every registered method]."),
        click.option("--p-ratio", "p_ratio", default=None,
                     help="Fraction of patch tokens kept: 0.5 | 0.3,0.5,0.7 | 0.1:0.9 (step 0.1) | 0.1:0.9:0.2 "
                          f"[default: {DEFAULT_P}]."),
        click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
                     help="Local weights (VideoMAE .pth/.safetensors or a Hugging Face model folder), or 'zoo' "
                          "for the shipped backbone of each synthetic dataset [default: zoo for the synthetic suite]."),
        click.option("--num-classes", type=int, default=None, help="Head size (default: the backbone's or checkpoint's)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _launcher_options(func):
    """Options of ``tokbench run --launcher submitit``."""
    for option in reversed([
        click.option("--launcher", type=click.Choice(["local", "submitit"]), default="local", show_default=True,
                     help="local: measure in this process (or under torchrun, sharded). submitit: submit the cells "
                          "not yet stored as a SLURM job array; every job writes to the same --results."),
        click.option("--jobs", type=click.IntRange(min=1), default=None,
                     help="submitit: jobs in the array [default: one per 8 cells, at most 64]."),
        click.option("--slurm-partition", default=None, help="submitit: SLURM partition."),
        click.option("--slurm-gpus-per-node", type=click.IntRange(min=0), default=0, show_default=True,
                     help="submitit: GPUs per job."),
        click.option("--slurm-cpus-per-task", type=click.IntRange(min=1), default=8, show_default=True),
        click.option("--slurm-time", type=click.IntRange(min=1), default=240, show_default=True,
                     help="submitit: time limit per job, minutes."),
        click.option("--slurm-mem-gb", type=click.IntRange(min=1), default=None, help="submitit: memory per job."),
        click.option("--slurm-account", default=None, help="submitit: SLURM account."),
        click.option("--slurm-array-parallelism", type=click.IntRange(min=1), default=32, show_default=True,
                     help="submitit: jobs of the array running at once."),
        click.option("--submitit-folder", type=click.Path(path_type=Path), default=None,
                     help="submitit: job scripts and logs [default: RESULTS/submitit]."),
        click.option("--submitit-cluster", type=click.Choice(["auto", "slurm", "local", "debug"]), default="auto",
                     show_default=True, help="submitit: auto = SLURM when sbatch exists, else local processes."),
        click.option("--wait", is_flag=True, help="submitit: wait for the jobs, then print the summary."),
    ]):
        func = option(func)
    return func


# -- run ---------------------------------------------------------------------------------

@cli.command("run")
@_sweep_options
@click.option("--dataset", "datasets", default=None,
              help="Dataset(s) for accuracy, comma-separated (see 'tokbench ls datasets'). Without it: cost only.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Folder of a real dataset.")
@click.option("--split", default=None, help="Split to evaluate [default: each dataset's evaluation split].")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Evaluate only the first N videos (all of them in a smaller split).")
@click.option("--eval-batch-size", type=click.IntRange(min=1), default=None,
              help="Videos per accuracy batch [default: 64 on the synthetic suite's tiny clips, else 8].")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="DataLoader worker processes that decode videos [default: none for the synthetic suite; for a real "
                   "dataset one per CPU but one, at most 8].")
@click.option("--metrics", default=None,
              help="What to measure: accuracy, flops, throughput [default: all three with --dataset, else flops,throughput].")
@click.option("--protocol", type=click.Choice(["eval", "lp", "ft"]), default="eval", show_default=True,
              help="eval: weights as they are; lp: linear probe on the reduced tokens; ft: fine-tune with the reduction on.")
@click.option("--train-limit", type=click.IntRange(min=1), default=None,
              help="Training clips per cell for --protocol lp/ft [default: the whole train split].")
@click.option("--eval-protocol", default=None, metavar="NAME",
              help="Evaluation protocol of real datasets (frames, crops, view merging; see 'tokbench ls protocols') "
                   "[default: each dataset's, from its published evaluation code]. Not --protocol, which is eval/lp/ft.")
@click.option("--eval-views", default=None, metavar="TxS",
              help="Temporal clips x spatial crops per video for real datasets, e.g. 2x3 [default: the protocol's].")
@click.option("--eval-stride", type=click.IntRange(min=1), default=None,
              help="Frame stride of a strided protocol (videomae-k400, motionformer-epic, slowfast-charades).")
@click.option("--eval-aggregation", type=click.Choice(["logits", "softmax", "sigmoid-max"]), default=None,
              help="How a video's views merge: mean of logits, mean of softmax, per-class max of sigmoid "
                   "[default: the protocol's].")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--dtype", default="auto", show_default=True, help="auto (bf16 autocast on CUDA, fp32 on CPU), fp32, bf16, fp16.")
@click.option("--batch-size", type=int, default=1, show_default=True, help="Clips per timed forward pass.")
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed forward passes before timing.")
@click.option("--repeats", type=int, default=10, show_default=True, help="Timed forward passes (median reported).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--seeds", "method_seeds", default=None, metavar="S1,S2,...",
              help="Seeds of the stochastic methods (those with a seed option, e.g. random): each that does not "
                   "set its seed runs once per seed; report and check pool them [default: 0,1,2 in the default run].")
@click.option("--results", "results_dir", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="Results folder; records are appended under runs/<machine>/.")
@click.option("--name", default="sweep", show_default=True, help="Label for this run's results file.")
@click.option("--retry-failed", is_flag=True, help="Re-run cells stored with status error or oom.")
@click.option("--clear-claims", is_flag=True,
              help="First remove every cell claim in RESULTS (claims of a sweep that died on another host, which "
                   "tokbench cannot check; never while another sweep runs on RESULTS).")
@click.option("--smoke", is_flag=True, help="A tiny slice: 16 clips per dataset, P 0.25 and 0.75, 2 timed repeats.")
@click.option("--compile", "compile_", is_flag=True,
              help="Time a torch.compile'd model (recorded as 'compiled'; accuracy and FLOPs are unchanged).")
@_launcher_options
def run_cmd(backbones, methods, p_ratio, checkpoint, num_classes, datasets, data_root, split, limit, eval_batch_size,
            workers, metrics, protocol, train_limit, eval_protocol, eval_views, eval_stride, eval_aggregation, device,
            dtype, batch_size, warmup, repeats, seed, method_seeds, results_dir, name, retry_failed, clear_claims, smoke,
            compile_,
            launcher, jobs, slurm_partition, slurm_gpus_per_node, slurm_cpus_per_task, slurm_time, slurm_mem_gb,
            slurm_account, slurm_array_parallelism, submitit_folder, submitit_cluster, wait) -> None:
    """Measure a sweep: datasets x backbones x methods x P-Ratios.

    With no options this is the benchmark on the embedded default: the six synthetic
    datasets, every registered method, P-Ratios 0.1,0.3,0.5,0.7,0.9, accuracy + FLOPs + throughput,
    with the zoo's backbones. Naming --backbone without --dataset measures cost only.

    Appends one record per cell to an append-only JSONL file under RESULTS/runs/ and
    flushes it at once; re-running the same command skips finished cells (resume).
    Methods that ignore P-Ratio (none) run once. Ends with a summary table.

    \b
    Example:
      tokbench run --backbone videomae_s --methods none,random --p-ratio 0.1:0.9 \\
                   --metrics flops,throughput --device cpu
      tokbench run --dataset synth-motion --backbone synth_tiny --checkpoint motion.safetensors
      tokbench run --dataset ssv2 --data-root /data/ssv2 --backbone videomae_b --checkpoint ssv2.pth
      tokbench run --dataset ssv2 ... --eval-views 1x1 --eval-aggregation logits   # a cheaper protocol variant
      torchrun --nproc-per-node 8 -m tokbench run --dataset ssv2 ...     # one evaluation, sharded
      tokbench run --dataset ssv2 ... --launcher submitit --slurm-partition gpu --slurm-gpus-per-node 1
    """
    from tokbench.benchmark.distributed import is_main_process, process_group_session
    from tokbench.benchmark.runner import plan, run_sweep
    from tokbench.benchmark.suite import RunOptions, sweep_from_options
    from tokbench.report.summary import run_summary, speed_warning
    from tokbench.store import output_folder

    if data_root is not None and not data_root.is_dir():
        raise TokbenchError(f"--data-root {data_root}: no such folder")
    resolved = sweep_from_options(
        RunOptions(backbones=backbones, methods=methods, p_ratio=p_ratio, checkpoint=checkpoint, datasets=datasets,
                   metrics=metrics, limit=limit, train_limit=train_limit, eval_batch_size=eval_batch_size,
                   seeds=method_seeds, name=name, smoke=smoke, repeats=repeats, warmup=warmup),
        device=device, dtype=dtype, batch_size=batch_size, seed=seed, num_classes=num_classes, split=split,
        data_root=str(data_root) if data_root else None, num_workers=workers, protocol=protocol, compile=compile_,
        eval_protocol=eval_protocol, eval_views=_parse_views(eval_views), eval_stride=eval_stride,
        eval_aggregation=eval_aggregation, command=shlex.join(["tokbench", *sys.argv[1:]]))
    for note in resolved.notes:
        click.echo(f"note: {note}", err=True)
    sweep = resolved.sweep
    cells = plan(sweep)  # validates everything before the store is touched
    output_folder(results_dir, "--results", make=False)  # a file in the way fails now, not after the first cell
    if clear_claims:
        from tokbench.claims import clear_claims as remove_claims

        click.echo(f"removed {remove_claims(results_dir)} cell claim(s) from {results_dir}", err=True)
    if launcher == "submitit":
        from tokbench.benchmark.launch import SlurmOptions, submit_sweep

        records, code = submit_sweep(
            sweep, cells, results_dir, retry_failed=retry_failed, jobs=jobs, folder=submitit_folder,
            cluster=None if submitit_cluster == "auto" else submitit_cluster, wait=wait,
            plugins=list(click.get_current_context().find_root().params.get("plugins") or ()),
            slurm=SlurmOptions(partition=slurm_partition, gpus_per_node=slurm_gpus_per_node,
                               cpus_per_task=slurm_cpus_per_task, timeout_min=slurm_time, mem_gb=slurm_mem_gb,
                               account=slurm_account, array_parallelism=slurm_array_parallelism),
            say=lambda line: click.echo(line, err=True))
        if records:
            click.echo(run_summary(records))
        return code
    main = is_main_process()  # under torchrun only rank 0 talks and writes
    if main:
        data = f"{', '.join(d for d in sweep.datasets if d)} x " if sweep.datasets != (None,) else ""
        click.echo(f"tokbench run: {len(cells)} cells ({data}{', '.join(sweep.backbones)} x {len(sweep.methods)} methods "
                   f"x {len(sweep.p_ratios)} P-Ratios), metrics {', '.join(sweep.metrics)}", err=True)
    from tokbench.report.progress import RunProgress

    progress = RunProgress()
    with process_group_session():
        try:
            result = run_sweep(sweep, results_dir=results_dir, retry_failed=retry_failed, progress=progress, cells=cells)
        finally:
            progress.close()
    if result.skipped:
        click.echo(f"skipped {result.skipped} cells already in {results_dir} (resume)", err=True)
    if result.claimed:
        click.echo(f"skipped {result.claimed} cells another running sweep on {results_dir} was measuring "
                   "(run this command again once it is done to measure any it did not finish)", err=True)
    if result.path:
        click.echo(f"wrote {len(result.records)} records to {result.path}", err=True)
    if not result.records and result.skipped:  # nothing left to measure: show what is stored
        from tokbench.report.check import latest_by_cell
        from tokbench.store import load_records

        keys = {c.key for c in cells}
        stored = [r for r in latest_by_cell(load_records(results_dir / "runs")).values() if r["cell_id"] in keys]
        if stored:
            click.echo(run_summary(stored))
    if result.records:
        click.echo(run_summary(result.records))
        if speed_warning(result.records):
            click.echo(f"tokbench: warning: {speed_warning(result.records)}", err=True)


def _parse_views(text: str | None) -> tuple[int, int] | None:
    """``--eval-views 5x3`` -> (5, 3)."""
    if text is None:
        return None
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) >= 1 for p in parts):
        raise TokbenchError(f"--eval-views {text!r}: give temporal clips x spatial crops, e.g. 5x3 or 2x3")
    return int(parts[0]), int(parts[1])


# -- flops -------------------------------------------------------------------------------

@cli.command("flops")
@_sweep_options
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def flops_cmd(backbones, methods, p_ratio, checkpoint, num_classes, fmt) -> None:
    """Print FLOPs per view of methods across P-Ratios (nothing is stored).

    GFLOPs follow fvcore's convention (1 multiply-add = 1 FLOP, as the papers report),
    with fused attention counted by tokbench's SDPA handle. Counts are cached per
    (geometry, method, P) in $TOKBENCH_CACHE (default ~/.cache/tokbench).

    \b
    Example:
      tokbench flops --backbone videomae_b --methods none,random --p-ratio 0.1:0.9 --format csv
    """
    from tokbench.benchmark.costs import cost_rows
    from tokbench.benchmark.flops import FLOPS_UNIT
    from tokbench.benchmark.spec import parse_p_ratios
    from tokbench.benchmark.suite import checkpoint_argument, split_names
    from tokbench.methods import METHODS, split_specs

    rows = cost_rows(split_names(backbones or "videomae_s"),
                     tuple(split_specs(methods)) if methods is not None else tuple(METHODS.names()),
                     tuple(parse_p_ratios(DEFAULT_P if p_ratio is None else p_ratio)),
                     checkpoint=checkpoint_argument(checkpoint), num_classes=num_classes)
    if fmt == "json":
        click.echo(json.dumps({"unit": FLOPS_UNIT, "rows": rows}, indent=2))
    elif fmt == "csv":
        import csv

        click.echo(f"# gflops: {FLOPS_UNIT}; embeds: tubelets through the patch embedding (all or kept)")
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        click.echo(f"GFLOPs: {FLOPS_UNIT}")
        click.echo(text_table(rows))


