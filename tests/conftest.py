"""Shared fixtures: deterministic seeds, an isolated FLOPs cache, tiny clips."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_cache(monkeypatch, tmp_path_factory):
    torch.manual_seed(0)
    # Never read or write the user's ~/.cache/tokbench from tests.
    monkeypatch.setenv("TOKBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def tiny():
    from tokbench.backbones import create_backbone

    return create_backbone("test_tiny")


@pytest.fixture
def tiny_video():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(3, 3, 4, 32, 32, generator=gen)
