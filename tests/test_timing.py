import statistics

import pytest
import torch

from tokbench.benchmark.timing import measure_throughput, resolve_dtype
from tokbench.errors import TokbenchError
from tokbench.methods import build_method

CPU = torch.device("cpu")


def test_timing_statistics_follow_from_the_samples(tiny):
    t = measure_throughput(tiny, build_method("random", p_ratio=0.5), batch_size=2, device=CPU, warmup=1, repeats=5)
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
    measure_throughput(tiny, method, batch_size=3, device=CPU, warmup=2, repeats=4)
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
