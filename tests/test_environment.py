import pytest
import torch

from tokbench.benchmark.environment import collect_environment, resolve_device
from tokbench.errors import TokbenchError


def test_environment_record():
    env = collect_environment(torch.device("cpu"))
    assert env["torch_version"] == torch.__version__.split("+")[0] or env["torch_version"] == torch.__version__
    assert env["device_type"] == "cpu" and env["torch_threads"] == torch.get_num_threads()
    for key in ("python", "timm_version", "fvcore_version", "tokbench_version", "device_name", "git_revision", "hostname"):
        assert key in env


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(TokbenchError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    with pytest.raises(TokbenchError, match="unsupported device 'meta'"):
        resolve_device("meta")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_without_cuda_is_one_clear_error():
    with pytest.raises(TokbenchError, match="CUDA is not available on this machine; use --device cpu"):
        resolve_device("cuda")
