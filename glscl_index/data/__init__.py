"""Benchmark and custom dataset readers: annotations -> DatasetSplit of Clips."""

from glscl_index.data.datasets import READERS, load_dataset
from glscl_index.data.records import Clip, DatasetSplit

__all__ = ["Clip", "DatasetSplit", "READERS", "load_dataset"]
