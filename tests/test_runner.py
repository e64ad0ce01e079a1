"""The sweep runner: planning and validation, one record per cell, resume, failure isolation,
the throughput path."""

from __future__ import annotations

import json
import re
import statistics
from importlib import metadata

import pytest
import torch

from tokbench.benchmark.environment import device_name
from tokbench.benchmark.runner import Sweep, plan, run_sweep
from tokbench.errors import TokbenchError, UnknownNameError, UnreachableError
from tokbench.methods import METHODS, Method
from tokbench.store import load_results

FLOPS = ("flops",)
TINY_TOKENS = 32  # test_tiny: 2x4x4 patch tokens (plus a CLS token)


def _sweep(methods=("none", "random"), p_ratios=(0.25, 0.5, 0.75), **kw) -> Sweep:
    return Sweep(backbones=("test_tiny",), methods=tuple(methods), p_ratios=tuple(p_ratios),
                 **{"metrics": FLOPS, **kw})


def _by_cell(records):
    return {(r["method_id"], r["p_ratio"]): r for r in records}


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --------------------------------------------------------------------------- test methods
# Registered with METHODS.temporary; ``name`` is set as register_method sets it.


class Boom(Method):
    """Fails inside the forward pass (while the FLOPs are traced)."""

    name = "boom"
    fail = True

    def after_embed(self, tokens, clips):
        if type(self).fail:
            raise RuntimeError("kaboom")
        return tokens


class Floor(Method):
    """Cannot go below P = 0.5 (like a merging method's floor)."""

    name = "floor"

    def __init__(self, *, p_ratio: float = 1.0) -> None:
        super().__init__(p_ratio=p_ratio)
        if p_ratio < 0.5:
            raise UnreachableError("P too low")


class SetupFloor(Method):
    """Finds out in ``setup`` (with the backbone) that it cannot reach P < 0.5."""

    name = "setup_floor"

    def setup(self, backbone) -> None:
        if self.p_ratio < 0.5:
            raise UnreachableError(f"setup_floor: P={self.p_ratio:g} is below the floor 0.5")


@pytest.fixture
def boom():
    Boom.fail = True
    with METHODS.temporary("boom", Boom):
        yield Boom
    Boom.fail = True


# --------------------------------------------------------------------------- plan


def test_plan_cells_and_stable_keys():
    cells = plan(_sweep())
    assert [(c.method_name, c.p_ratio) for c in cells] == [
        ("none", 1.0), ("random", 0.25), ("random", 0.5), ("random", 0.75),
    ]
    assert {c.backbone for c in cells} == {"test_tiny"}
    assert [c.method_id for c in cells] == ["none", "random", "random", "random"]
    assert cells[1].method_params == {"seed": 0}
    assert cells[0].weights == "random-init"
    keys = [c.key for c in cells]
    assert len(set(keys)) == 4
    assert all(re.fullmatch(r"[0-9a-f]{16}", k) for k in keys)
    assert [c.key for c in plan(_sweep())] == keys  # stable across calls


def test_plan_keys_follow_resolved_params():
    def key(spec):
        (cell,) = plan(_sweep(methods=(spec,), p_ratios=(0.5,)))
        return cell

    default, explicit, other = key("random"), key("random(seed=0)"), key("random(seed=1)")
    assert default.key == explicit.key
    assert default.method_id == explicit.method_id == "random"
    assert other.key != default.key
    assert other.method_id == "random(seed=1)"
    assert other.method_params == {"seed": 1}
    assert key("full").key == key("none").key  # an alias is the same method
    # P-Ratio, seed and dtype are part of the key; which metrics are asked for is not
    assert plan(_sweep(methods=("random",), p_ratios=(0.6,)))[0].key != default.key
    assert plan(_sweep(methods=("random",), p_ratios=(0.5,), seed=1))[0].key != default.key
    assert plan(_sweep(methods=("random",), p_ratios=(0.5,), dtype="bf16"))[0].key != default.key
    timed = plan(_sweep(methods=("random",), p_ratios=(0.5,), metrics=("flops", "throughput")))[0]
    assert timed.key == default.key and default.speed_key is None
    # The speed id adds the device and how it is timed
    assert timed.speed_key not in (None, timed.key)
    assert plan(_sweep(methods=("random",), p_ratios=(0.5,), metrics=("throughput",), repeats=3))[0].speed_key \
        != timed.speed_key


# --------------------------------------------------------------------------- run_sweep


def test_run_sweep_flops_records_and_resume(tmp_path):
    sweep = _sweep(p_ratios=(0.25, 0.265625, 0.5, 0.75))
    result = run_sweep(sweep, results_dir=tmp_path)
    assert result.skipped == 0
    assert len(result.records) == 5
    assert result.path.parent == tmp_path / "runs" / result.path.parent.name
    assert _lines(result.path) == json.loads(json.dumps(result.records))  # what was returned was written
    by_cell = _by_cell(result.records)
    assert sorted(by_cell) == [("none", 1.0), ("random", 0.25), ("random", 0.265625), ("random", 0.5),
                               ("random", 0.75)]
    for r in result.records:
        assert (r["status"], r["error"]) == ("ok", None)
        assert r["schema_version"] == 1 and r["backbone"] == "test_tiny" and r["num_patches"] == TINY_TOKENS
        assert r["metrics"] == ["flops"]
        assert "clips_per_s" not in r
    # keep_count: round half up (0.265625 * 32 = 8.5 -> 9, not banker's 8)
    assert {k: by_cell[k]["tokens_kept"] for k in by_cell} == {
        ("none", 1.0): 32, ("random", 0.25): 8, ("random", 0.265625): 9, ("random", 0.5): 16,
        ("random", 0.75): 24,
    }
    assert by_cell[("random", 0.5)]["tokens_per_block"] == [17.0, 17.0]  # + CLS, in both blocks
    assert (by_cell[("none", 1.0)]["embeds"], by_cell[("random", 0.5)]["embeds"]) == ("all", "kept")
    g = [by_cell[("random", p)]["gflops"] for p in (0.25, 0.265625, 0.5, 0.75)]
    assert all(a < b for a, b in zip(g, g[1:])), g
    assert by_cell[("none", 1.0)]["gflops"] > g[-1] > 0
    assert len({r["params_m"] for r in result.records}) == 1
    assert result.records[0]["params_m"] > 0
    env = result.records[0]["env"]
    assert env["torch_version"] == metadata.version("torch")
    assert env["device_name"] == device_name(torch.device("cpu")) != ""
    assert len({r["run_id"] for r in result.records}) == 1
    assert len({r["cell_id"] for r in result.records}) == 5

    files_before = sorted(tmp_path.rglob("*"))
    content_before = result.path.read_bytes()
    again = run_sweep(sweep, results_dir=tmp_path)
    assert (again.records, again.skipped, again.path) == ([], 5, None)
    assert sorted(tmp_path.rglob("*")) == files_before
    assert result.path.read_bytes() == content_before

    df = load_results(tmp_path)
    assert sorted(df["cell_id"]) == sorted(r["cell_id"] for r in result.records)
    assert set(df["status"]) == {"ok"}
    assert df["env.torch_version"].tolist() == [metadata.version("torch")] * 5

    # curated copies beside runs/ (results/baseline, results/synthetic) are not work done here
    other = tmp_path.parent / (tmp_path.name + "-curated")
    (other / "baseline").mkdir(parents=True)
    (other / "baseline" / "copy.jsonl").write_bytes(content_before)
    assert run_sweep(sweep, results_dir=other).skipped == 0

    # a larger sweep runs only the new cells
    more = run_sweep(_sweep(p_ratios=(0.25, 0.9)), results_dir=tmp_path)
    assert more.skipped == 2
    assert [(r["method"], r["p_ratio"], r["tokens_kept"]) for r in more.records] == [("random", 0.9, 29)]
    assert len(load_results(tmp_path)) == 6


def test_error_is_recorded_and_does_not_stop_the_sweep(tmp_path, boom):
    result = run_sweep(_sweep(methods=("boom", "random"), p_ratios=(0.25, 0.5)), results_dir=tmp_path)
    status = {k: (r["status"], r["error"]) for k, r in _by_cell(result.records).items()}
    assert status == {
        ("boom", 0.25): ("error", "RuntimeError: kaboom"),
        ("boom", 0.5): ("error", "RuntimeError: kaboom"),
        ("random", 0.25): ("ok", None),
        ("random", 0.5): ("ok", None),
    }
    assert [r["tokens_kept"] for r in result.records if r["method"] == "random"] == [8, 16]
    assert all("gflops" not in r for r in result.records if r["method"] == "boom")
    assert len(_lines(result.path)) == 4


class Hungry(Method):
    """Runs out of memory the way the CPU allocator says it (a RuntimeError)."""

    name = "hungry"

    def after_embed(self, tokens, clips):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 98304000000 bytes.\nmore detail")


def test_out_of_memory_is_recorded_as_oom_and_retried(tmp_path):
    from tokbench.benchmark.runner import is_out_of_memory

    assert is_out_of_memory(MemoryError()) and is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert not is_out_of_memory(RuntimeError("kaboom")) and not is_out_of_memory(ValueError("out of memory"))
    with METHODS.temporary("hungry", Hungry):
        first = run_sweep(_sweep(methods=("hungry", "random"), p_ratios=(0.5,)), results_dir=tmp_path)
        status = {k: r["status"] for k, r in _by_cell(first.records).items()}
        assert status == {("hungry", 0.5): "oom", ("random", 0.5): "ok"}
        oom = next(r for r in first.records if r["method"] == "hungry")
        assert oom["error"].startswith("RuntimeError: [enforce fail") and "\n" not in oom["error"]
        again = run_sweep(_sweep(methods=("hungry", "random"), p_ratios=(0.5,)), results_dir=tmp_path, retry_failed=True)
    assert [(r["method"], r["status"]) for r in again.records] == [("hungry", "oom")] and again.skipped == 1


def test_unreachable_raised_in_init_is_recorded(tmp_path):
    """A method that cannot reach a P-Ratio says so in ``__init__``; the cell is recorded as
    unreachable, never refused up front (nor clamped)."""
    with METHODS.temporary("floor", Floor):
        result = run_sweep(_sweep(methods=("floor",), p_ratios=(0.25, 0.5, 0.75)), results_dir=tmp_path)
    status = {k: (r["status"], r["error"]) for k, r in _by_cell(result.records).items()}
    assert status == {
        ("floor", 0.25): ("unreachable", "P too low"),
        ("floor", 0.5): ("ok", None),
        ("floor", 0.75): ("ok", None),
    }


def test_unreachable_raised_in_setup_is_recorded(tmp_path):
    sweep = _sweep(methods=("setup_floor", "random"), p_ratios=(0.25, 0.5))
    with METHODS.temporary("setup_floor", SetupFloor):
        result = run_sweep(sweep, results_dir=tmp_path)
        # unreachable is final: retry_failed does not re-run it
        again = run_sweep(sweep, results_dir=tmp_path, retry_failed=True)
    status = {k: (r["status"], r["error"]) for k, r in _by_cell(result.records).items()}
    assert status == {
        ("setup_floor", 0.25): ("unreachable", "setup_floor: P=0.25 is below the floor 0.5"),
        ("setup_floor", 0.5): ("ok", None),
        ("random", 0.25): ("ok", None),
        ("random", 0.5): ("ok", None),
    }
    assert (again.records, again.skipped) == ([], 4)


def test_retry_failed_reruns_only_error_cells(tmp_path, boom):
    sweep = _sweep(methods=("boom", "random"), p_ratios=(0.5,))
    first = run_sweep(sweep, results_dir=tmp_path)
    assert [(r["method"], r["status"]) for r in first.records] == [("boom", "error"), ("random", "ok")]
    boom_key = first.records[0]["cell_id"]

    resumed = run_sweep(sweep, results_dir=tmp_path)
    assert (resumed.records, resumed.skipped, resumed.path) == ([], 2, None)

    boom.fail = False  # the cause of the error is fixed
    retried = run_sweep(sweep, results_dir=tmp_path, retry_failed=True)
    assert retried.skipped == 1
    assert [(r["method"], r["status"], r["cell_id"]) for r in retried.records] == [("boom", "ok", boom_key)]
    assert _lines(first.path)[:2] == json.loads(json.dumps(first.records))  # records are never rewritten

    final = run_sweep(sweep, results_dir=tmp_path, retry_failed=True)
    assert (final.records, final.skipped) == ([], 2)
    df = load_results(tmp_path)
    assert sorted(df["status"]) == ["error", "ok", "ok"]


def test_throughput_path(tmp_path):
    sweep = _sweep(methods=("random",), p_ratios=(0.5,), metrics=("flops", "throughput"), device="cpu",
                   repeats=2, warmup=0, batch_size=2)
    (r,) = run_sweep(sweep, results_dir=tmp_path).records
    assert r["status"] == "ok", r["error"]
    assert r["metrics"] == ["flops", "throughput"]
    # At least the 2 asked for; up to 4x while the spread is above the target (issue 18).
    samples = r["latency_ms"]
    assert 2 <= len(samples) <= 8 and all(t > 0 for t in samples)
    if len(samples) > 2:
        q1, _, q3 = statistics.quantiles(samples[:-1], n=4, method="inclusive")
        assert (q3 - q1) / statistics.median(samples[:-1]) > 0.10  # it went on only while noisy
    assert r["median_ms"] == pytest.approx(statistics.median(samples))
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    assert r["iqr_ms"] == pytest.approx(q3 - q1)
    assert r["clips_per_s"] == pytest.approx(2 / (r["median_ms"] / 1000))
    assert r["ms_per_clip"] == pytest.approx(r["median_ms"] / 2)
    assert (r["batch_size"], r["warmup"], r["repeats"]) == (2, 0, 2)
    assert (r["dtype"], r["device"], r["peak_mem_mb"]) == ("fp32", "cpu", None)
    assert r["tokens_kept"] == 16 and r["gflops"] > 0
    df = load_results(tmp_path)
    assert df.loc[0, "latency_ms"] == r["latency_ms"]
    assert df.loc[0, "clips_per_s"] == r["clips_per_s"]


def test_content_dependent_method_in_a_cost_sweep(tmp_path):
    """RLT without a dataset: calibrated on the content dataset's train clips, FLOPs
    averaged over its val clips, timed on them; the state and the source are recorded."""
    sweep = _sweep(methods=("rlt",), p_ratios=(0.5, 0.75), metrics=("flops", "throughput"), device="cpu",
                   repeats=1, warmup=0, batch_size=2, calibration_clips=8, flop_clips=4)
    records = _by_cell(run_sweep(sweep, results_dir=tmp_path).records)
    for p in (0.5, 0.75):
        r = records[("rlt", p)]
        assert r["status"] == "ok", r["error"]
        state = r["method_state"]
        assert state["calibrated"] and state["calibration_clips"] == 8 and r["content_dataset"] == "synth-motion"
        assert abs(state["kept_fraction_mean"] - p) < 0.1  # as close as 8 clips of 32 tokens allow
        assert 16 <= r["tokens_kept"] <= 32 and r["clips_per_s"] > 0
    # P = 0.5 is the forced first slice of test_tiny's two: exactly half, every clip.
    assert records[("rlt", 0.5)]["tokens_kept"] == 16 and records[("rlt", 0.5)]["gflops_std"] == 0
    # Merging methods record the FLOP-matched schedule they ran.
    (tome,) = run_sweep(_sweep(methods=("tome",), p_ratios=(0.75,)), results_dir=tmp_path).records
    assert tome["method_state"]["r_list"] == [8, 8] and tome["tokens_per_block"] == [33.0, 25.0]


# --------------------------------------------------------------------------- bad input


BAD = {
    "batch_size": (dict(batch_size=0), TokbenchError, "--batch-size must be >= 1, got 0"),
    "repeats": (dict(repeats=0), TokbenchError, "--repeats must be >= 1, got 0"),
    "warmup": (dict(warmup=-1), TokbenchError, "--warmup must be >= 0, got -1"),
    "backbone": (dict(backbones=("videomae_x",)), UnknownNameError, "unknown backbone 'videomae_x'"),
    "method": (dict(methods=("rnadom",)), UnknownNameError, "Did you mean 'random'"),
    "option": (dict(methods=("random(sed=1)",)), TokbenchError, "method 'random' has no option 'sed'"),
    "no_methods": (dict(methods=()), TokbenchError, "nothing to run"),
    "no_p_ratios": (dict(p_ratios=()), TokbenchError, "nothing to run"),
    "p_ratio": (dict(p_ratios=(1.5,)), TokbenchError, "p_ratio must be a number in (0, 1], got 1.5"),
    "device": (dict(device="tpu"), TokbenchError, "unknown device 'tpu'"),
    "dtype": (dict(dtype="fp8"), TokbenchError, "unknown dtype 'fp8'"),
    "checkpoint": (dict(checkpoint="/does/not/exist.pth"), TokbenchError, "checkpoint not found"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raises_before_writing(tmp_path, case):
    changes, error, fragment = BAD[case]
    sweep = Sweep(**{
        "backbones": ("test_tiny",), "methods": ("none", "random"), "p_ratios": (0.5,), "metrics": FLOPS,
        **changes,
    })
    results = tmp_path / "results"
    with pytest.raises(error) as e:
        run_sweep(sweep, results_dir=results)
    assert fragment in str(e.value)
    assert not results.exists()
    with pytest.raises(error):
        plan(sweep)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_raises_before_writing(tmp_path):
    results = tmp_path / "results"
    with pytest.raises(TokbenchError, match="--device cuda: CUDA is not available"):
        run_sweep(_sweep(device="cuda"), results_dir=results)
    assert not results.exists()


def test_records_name_the_attention_kernel_each_block_ran(tiny):
    from tokbench.benchmark.runner import attention_kernels
    from tokbench.methods import build_method

    config = tiny.config  # 2 blocks, fused attention
    plain = build_method("random", p_ratio=0.5)
    assert attention_kernels(plain, config) == {"attn_impl": "sdpa", "attn_impl_blocks": ["sdpa", "sdpa"]}
    cue = build_method("attention", p_ratio=0.5)  # its decision block reads attention probabilities
    cue.setup(tiny)
    kernels = attention_kernels(cue, config)
    assert kernels["attn_impl"] == "mixed" and kernels["attn_impl_blocks"].count("explicit") == 1
