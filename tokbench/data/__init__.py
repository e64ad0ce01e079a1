"""Datasets: the synthetic suite, real-dataset loaders, views and metrics."""

from tokbench.data.base import DATASETS, DataError, DatasetCard, create_dataset, register_dataset

# Built-in datasets register themselves on import.
from tokbench.data import real, synthetic  # noqa: F401  isort: skip

__all__ = ["DATASETS", "DataError", "DatasetCard", "create_dataset", "register_dataset"]
