"""Datasets: the synthetic suite, real-dataset loaders, views and metrics."""

from tokbench.data.base import DATASETS, DataError, DatasetCard, create_dataset, register_dataset

__all__ = ["DATASETS", "DataError", "DatasetCard", "create_dataset", "register_dataset"]
