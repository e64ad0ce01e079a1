"""The environment a measurement was taken in; stored with every record."""

from __future__ import annotations

import functools
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import torch

from tokbench.errors import TokbenchError

__all__ = ["collect_environment", "device_name", "git_revision", "resolve_device"]

_PACKAGES = ("tokbench", "torch", "timm", "fvcore", "numpy")


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; checks that CUDA exists when asked for.

    Raises:
        TokbenchError: CUDA requested on a machine without it, or a malformed device.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise TokbenchError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise TokbenchError(f"unsupported device {device!r}: use auto, cpu, cuda or cuda:N")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise TokbenchError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise TokbenchError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    return dev


def device_name(device: torch.device) -> str:
    """Human-readable accelerator or CPU model name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _cpu_model()


@functools.cache
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def git_revision() -> str | None:
    """Commit of the tokbench source tree (``+dirty`` when modified), or None when tokbench
    is not run from a git checkout (an installed wheel inside some other repository must not
    report that repository's commit)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def collect_environment(device: torch.device) -> dict:
    """Versions, machine, device and threads: enough to tell whether two records are
    comparable."""
    env = {f"{p}_version": _version(p) for p in _PACKAGES}
    env.update(
        python=platform.python_version(),
        platform=platform.platform(),
        hostname=socket.gethostname(),
        device_type=device.type,
        device_name=device_name(device),
        cpu=_cpu_model(),
        torch_threads=torch.get_num_threads(),
        cuda=torch.version.cuda if device.type == "cuda" else None,
        cudnn=torch.backends.cudnn.version() if device.type == "cuda" else None,
        git_revision=git_revision(),
    )
    return env
