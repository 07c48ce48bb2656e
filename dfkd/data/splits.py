"""Seeded, stratified splits of graph labels."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch


def _shuffled_by_class(labels: Sequence[int], seed: int) -> List[List[int]]:
    gen = torch.Generator().manual_seed(seed)
    labels_t = torch.as_tensor(list(labels))
    groups = []
    for cls in torch.unique(labels_t).tolist():
        idx = (labels_t == cls).nonzero().view(-1)
        groups.append(idx[torch.randperm(idx.numel(), generator=gen)].tolist())
    return groups


def stratified_split(labels: Sequence[int], test_ratio: float = 0.3, seed: int = 0) -> Tuple[List[int], List[int]]:
    """Split indices so each class keeps its proportion in both parts.

    Args:
        labels: class of each item, length ``N``.
        test_ratio: fraction of each class that goes to the second part.
        seed: makes the split reproducible.

    Returns:
        ``(train_idx, test_idx)``, each sorted.
    """
    if not 0.0 < test_ratio < 1.0:
        raise ValueError(f"test_ratio must be in (0, 1), got {test_ratio}")
    train: List[int] = []
    test: List[int] = []
    for idx in _shuffled_by_class(labels, seed):
        k = int(round(len(idx) * test_ratio))
        if len(idx) > 1:
            k = min(max(k, 1), len(idx) - 1)  # keep each class on both sides
        test += idx[:k]
        train += idx[k:]
    return sorted(train), sorted(test)


def stratified_kfold(labels: Sequence[int], num_folds: int = 10, seed: int = 0) -> List[Tuple[List[int], List[int]]]:
    """Stratified ``k``-fold split: a list of ``(train_idx, test_idx)``, one per fold."""
    if num_folds < 2:
        raise ValueError(f"num_folds must be >= 2, got {num_folds}")
    folds: List[List[int]] = [[] for _ in range(num_folds)]
    offset = 0
    for idx in _shuffled_by_class(labels, seed):
        for pos, item in enumerate(idx):
            folds[(offset + pos) % num_folds].append(item)
        offset += len(idx)
    everything = set(range(len(labels)))
    return [(sorted(everything - set(f)), sorted(f)) for f in folds]
