import statistics

import pytest
import torch

from tokbench.benchmark import timing
from tokbench.benchmark.timing import calibrate, measure_throughput, median_interval, resolve_dtype
from tokbench.errors import TokbenchError
from tokbench.methods import build_method

CPU = torch.device("cpu")


def test_timing_statistics_follow_from_the_samples(tiny):
    t = measure_throughput(tiny, build_method("random", p_ratio=0.5), batch_size=2, device=CPU, warmup=1, repeats=5,
                           target_spread=float("inf"))  # exactly the requested repeats
    assert len(t.samples_ms) == 5 and all(s > 0 for s in t.samples_ms)
    assert t.median_ms == statistics.median(t.samples_ms)
    q = statistics.quantiles(t.samples_ms, n=4, method="inclusive")
    assert t.iqr_ms == pytest.approx(q[2] - q[0])
    assert t.ms_per_clip == pytest.approx(t.median_ms / 2)
    assert t.clips_per_s == pytest.approx(2 / (t.median_ms / 1e3))
    assert t.peak_mem_mb is None and t.dtype == "fp32" and (t.batch_size, t.warmup, t.repeats) == (2, 1, 5)


def test_timing_runs_the_method_on_the_model(tiny, monkeypatch):
    calls = []
    method = build_method("none")
    real = tiny.forward
    monkeypatch.setattr(tiny, "forward", lambda video, m=None, **k: calls.append((video.shape, m)) or real(video, m))
    measure_throughput(tiny, method, batch_size=3, device=CPU, warmup=2, repeats=4, target_spread=float("inf"))
    assert len(calls) == 6 and all(shape == (3, 3, 4, 32, 32) and m is method for shape, m in calls)


def test_bf16_autocast_on_cpu_leaves_model_in_fp32(tiny):
    t = measure_throughput(tiny, build_method("none"), batch_size=1, device=CPU, dtype="bf16", warmup=0, repeats=1)
    assert t.dtype == "bf16" and next(tiny.parameters()).dtype == torch.float32


def test_bad_timing_arguments():
    with pytest.raises(TokbenchError, match="batch_size and repeats must be >= 1"):
        measure_throughput(None, None, batch_size=0, device=CPU)
    with pytest.raises(TokbenchError, match="unknown dtype 'fp8'"):
        resolve_dtype("fp8", CPU)
    assert resolve_dtype("auto", CPU) == "fp32" and resolve_dtype("auto", torch.device("cuda")) == "bf16"


@pytest.mark.gpu
def test_cuda_timing_uses_events_and_reports_memory():
    from tokbench.backbones import create_backbone

    device = torch.device("cuda")
    model = create_backbone("videomae_s").to(device)
    t = measure_throughput(model, build_method("random", p_ratio=0.5), batch_size=4, device=device, warmup=2, repeats=5)
    assert t.dtype == "bf16" and t.peak_mem_mb > 0 and len(t.samples_ms) == 5


def test_median_interval_takes_the_binomial_ranks():
    # n = 10: P(Binomial(10, 1/2) <= 1) = 11/1024 <= 0.025 < P(<= 2): ranks 2 and 9 (97.9 % coverage).
    assert median_interval([float(x) for x in range(10, 0, -1)]) == (2.0, 9.0)
    # n = 20: P(<= 5) = 0.0207, P(<= 6) = 0.0577: ranks 6 and 15.
    assert median_interval([float(x) for x in range(1, 21)]) == (6.0, 15.0)
    assert median_interval([3.0, 1.0, 2.0]) == (1.0, 3.0)  # too few samples for 95 %: min and max


def test_more_repeats_while_the_spread_is_wide_and_flags(tiny, monkeypatch):
    clock = iter([0.0, 0.010, 1.0, 1.030, 2.0, 2.010, 3.0, 3.011, 4.0, 4.010, 5.0, 5.010, 6.0, 6.010, 7.0, 7.010,
                  8.0, 8.010, 9.0, 9.010, 10.0, 10.010, 11.0, 11.010])
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(timing, "calibrate", lambda device: 100.0)
    monkeypatch.setattr(timing, "load_per_cpu", lambda: 0.5)
    t = measure_throughput(tiny, build_method("none"), batch_size=1, device=CPU, warmup=0, repeats=2)
    # 10 ms, 30 ms: spread 100 %; then 11, 10, 10 ...: more samples until IQR / median <= 10 %.
    assert t.samples_ms[:3] == pytest.approx([10.0, 30.0, 10.0]) and 2 < len(t.samples_ms) <= 8
    assert t.spread <= timing.TARGET_SPREAD and t.flags == []
    assert t.calibration_gflops == (100.0, 100.0) and t.load_per_cpu == 0.5
    assert (t.clips_per_s_lo, t.clips_per_s_hi) == pytest.approx((1e3 / max(t.samples_ms), 1e3 / min(t.samples_ms)))


def test_a_busy_machine_is_flagged(tiny, monkeypatch):
    monkeypatch.setattr(timing, "load_per_cpu", lambda: 3.0)  # three runnable threads per CPU
    assert "busy" in measure_throughput(tiny, build_method("none"), batch_size=1, device=CPU, warmup=0, repeats=2).flags
    monkeypatch.setattr(timing, "load_per_cpu", lambda: 0.1)
    monkeypatch.setattr(timing, "calibrate", lambda device: 50.0)  # half what the sweep saw when quiet
    t = measure_throughput(tiny, build_method("none"), batch_size=1, device=CPU, warmup=0, repeats=2,
                           best_calibration=100.0)
    assert "busy" in t.flags
    assert "busy" not in measure_throughput(tiny, build_method("none"), batch_size=1, device=CPU, warmup=0, repeats=2,
                                            best_calibration=60.0).flags


def test_calibration_is_a_positive_rate():
    assert calibrate(CPU, size=64, reps=2) > 0
