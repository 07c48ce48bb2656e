"""Datasets, readers and splits."""
from dfkd.data.datasets import (
    BUNDLED,
    GINFormatDataset,
    canonical_name,
    encode_graphs,
    load_dataset,
    size_stats,
    split_from_record,
    split_indices,
)
from dfkd.data.gin_format import DatasetFormatError, RawGraph, read_fold, read_gin_txt
from dfkd.data.splits import stratified_kfold, stratified_split
from dfkd.data.synthetic_tasks import (
    REGRESSION_TASKS,
    SyntheticRegressionDataset,
    graph_target,
    is_regression_dataset,
    make_regression_dataset,
    triangle_count,
)

__all__ = [
    "BUNDLED", "DatasetFormatError", "GINFormatDataset", "RawGraph", "canonical_name", "encode_graphs",
    "REGRESSION_TASKS", "SyntheticRegressionDataset", "graph_target", "is_regression_dataset",
    "make_regression_dataset", "triangle_count",
    "load_dataset", "read_fold", "read_gin_txt", "size_stats", "split_from_record", "split_indices", "stratified_kfold", "stratified_split",
]
