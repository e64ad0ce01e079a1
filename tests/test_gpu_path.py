"""The GPU path: bf16 autocast, --compile, CUDA-event timing. The CUDA tests are marked `gpu`
(run them with `pytest -m gpu` on a CUDA machine); compiling on the CPU is `slow`."""

import json

import pytest
import torch
from click.testing import CliRunner

from tokbench.cli import cli
from tokbench.store import load_records


def _run(tmp_path, *args):
    r = CliRunner().invoke(cli, ["run", *args, "--results", str(tmp_path)])
    assert r.exit_code == 0, r.output
    return {(x["method"], x["p_ratio"]): x for x in load_records(tmp_path / "runs")}


@pytest.mark.slow
def test_compile_on_cpu_is_recorded_and_keeps_cell_ids_apart(tmp_path):
    args = ["--backbone", "test_tiny", "--methods", "none,random", "--p-ratio", "0.5", "--metrics", "throughput",
            "--repeats", "3", "--device", "cpu"]
    compiled = _run(tmp_path / "c", *args, "--compile")
    eager = _run(tmp_path / "e", *args)
    for key in compiled:
        assert compiled[key]["compiled"] is True and eager[key]["compiled"] is False
        assert compiled[key]["clips_per_s"] > 0 and compiled[key]["warmup"] >= 2
        assert compiled[key]["cell_id"] != eager[key]["cell_id"]  # resume never mixes the two


def test_compile_flag_is_off_by_default_and_changes_only_the_speed_id(tmp_path):
    from tokbench.benchmark.runner import Sweep, plan

    base = dict(backbones=("test_tiny",), methods=("random",), p_ratios=(0.5,), device="cpu")
    off, on = plan(Sweep(**base))[0], plan(Sweep(**base, compile=True))[0]
    assert Sweep(**base).compile is False
    assert off.key == on.key  # compiling changes nothing FLOPs or accuracy measure
    assert off.speed_key != on.speed_key  # but it is timed separately


@pytest.mark.gpu
def test_cuda_run_uses_bf16_autocast_and_events(tmp_path):
    records = _run(tmp_path, "--backbone", "videomae_b", "--methods", "none,random", "--p-ratio", "0.5",
                   "--metrics", "flops,throughput", "--batch-size", "8", "--device", "cuda")
    for record in records.values():
        assert record["dtype"] == "bf16" and record["device"].startswith("cuda") and record["peak_mem_mb"] > 0
        assert len(record["latency_ms"]) == record["repeats"]
    assert records[("random", 0.5)]["clips_per_s"] > records[("none", 1.0)]["clips_per_s"]
    json.dumps(list(records.values()))


@pytest.mark.gpu
def test_cuda_compile_and_bf16_accuracy(tmp_path):
    records = _run(tmp_path, "--dataset", "synth-motion", "--methods", "none,random", "--p-ratio", "0.5",
                   "--limit", "64", "--device", "cuda", "--compile")
    fp32 = _run(tmp_path / "fp32", "--dataset", "synth-motion", "--methods", "none,random", "--p-ratio", "0.5",
                "--limit", "64", "--device", "cpu", "--metrics", "accuracy")
    for key, record in records.items():
        assert record["compiled"] is True and record["dtype"] == "bf16"
        assert abs(record["top1"] - fp32[key]["top1"]) <= 3 / 64  # bf16 flips at most a few near-ties
    assert torch.cuda.is_available()
