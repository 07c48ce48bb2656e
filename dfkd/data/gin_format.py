"""Reader for the GIN benchmark text format (``NAME/NAME.txt``).

Format: line 1 holds the number of graphs ``G``; each graph starts with
``n label`` and is followed by ``n`` node lines ``tag m nb_1 .. nb_m [attr ..]``.
Any inconsistency raises :class:`DatasetFormatError` naming the file and line:
a dataset is read whole or not at all.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Tuple


class DatasetFormatError(ValueError):
    """A dataset file does not follow the GIN text format."""


@dataclass
class RawGraph:
    """One graph as read from the file, before feature encoding.

    Attributes:
        label: raw graph label as written.
        tags: node tag per node, length ``n``.
        edges: directed ``(source, target)`` pairs, both directions present.
        attrs: optional continuous attributes per node.
    """

    label: int
    tags: List[int]
    edges: List[Tuple[int, int]]
    attrs: Optional[List[List[float]]] = None


def read_gin_txt(path: str) -> List[RawGraph]:
    """Parse a GIN-format file into :class:`RawGraph` objects.

    Raises:
        DatasetFormatError: with ``path:line: problem`` for any malformed input.
        FileNotFoundError: when the file is missing.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"dataset file not found: {path}")
    with open(path, "r", encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    cursor = 0

    def fail(lineno: int, problem: str) -> DatasetFormatError:
        return DatasetFormatError(f"{path}:{lineno}: {problem}")

    def next_ints(expect: str) -> Tuple[int, List[str]]:
        nonlocal cursor
        if cursor >= len(lines):
            raise fail(cursor + 1, f"file ends early: expected {expect}")
        cursor += 1
        tokens = lines[cursor - 1].split()
        if not tokens:
            raise fail(cursor, f"empty line: expected {expect}")
        return cursor, tokens

    def to_int(tok: str, lineno: int, what: str) -> int:
        try:
            return int(tok)
        except ValueError:
            raise fail(lineno, f"{what} {tok!r} is not an integer") from None

    lineno, tokens = next_ints("the number of graphs")
    num_graphs = to_int(tokens[0], lineno, "graph count")
    if num_graphs < 0:
        raise fail(lineno, f"negative graph count {num_graphs}")
    graphs: List[RawGraph] = []
    for g in range(num_graphs):
        lineno, tokens = next_ints(f"header 'n label' of graph {g + 1} of {num_graphs}")
        if len(tokens) != 2:
            raise fail(lineno, f"graph header must be 'n label', got {len(tokens)} fields")
        n = to_int(tokens[0], lineno, "node count")
        label = to_int(tokens[1], lineno, "graph label")
        if n < 0:
            raise fail(lineno, f"negative node count {n}")
        tags: List[int] = []
        edges: List[Tuple[int, int]] = []
        attrs: List[List[float]] = []
        for i in range(n):
            lineno, tokens = next_ints(f"node {i} of graph {g + 1} ({n} nodes declared)")
            if len(tokens) < 2:
                raise fail(lineno, "node line must start with 'tag m'")
            tags.append(to_int(tokens[0], lineno, "node tag"))
            m = to_int(tokens[1], lineno, "neighbour count")
            if m < 0 or len(tokens) < 2 + m:
                raise fail(lineno, f"node declares {m} neighbours but lists {len(tokens) - 2}")
            for tok in tokens[2 : 2 + m]:
                j = to_int(tok, lineno, "neighbour index")
                if not 0 <= j < n:
                    raise fail(lineno, f"neighbour index {j} out of range for a graph of {n} nodes")
                edges.append((i, j))
            if len(tokens) > 2 + m:
                try:
                    attrs.append([float(t) for t in tokens[2 + m :]])
                except ValueError:
                    raise fail(lineno, "node attributes must be numbers") from None
        if attrs and len(attrs) != n:
            raise fail(lineno, "some nodes have attributes and others do not")
        if attrs and len({len(a) for a in attrs}) != 1:
            raise fail(lineno, "nodes have attribute vectors of different lengths")
        graphs.append(RawGraph(label=label, tags=tags, edges=edges, attrs=attrs or None))
    if cursor < len(lines) and any(line.strip() for line in lines[cursor:]):
        raise fail(cursor + 1, f"unexpected content after the {num_graphs} declared graphs")
    return graphs


def read_fold(dataset_dir: str, fold: int, num_graphs: int) -> Tuple[List[int], List[int]]:
    """Train and test indices of the standard split ``fold`` (1..10) from ``10fold_idx/``."""
    if not 1 <= fold <= 10:
        raise ValueError(f"fold must be in 1..10, got {fold}")
    out = []
    for kind in ("train", "test"):
        path = os.path.join(dataset_dir, "10fold_idx", f"{kind}_idx-{fold}.txt")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"split file not found: {path}")
        idx = []
        with open(path, "r", encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    value = int(line)
                except ValueError:
                    raise DatasetFormatError(f"{path}:{lineno}: index {line.strip()!r} is not an integer") from None
                if not 0 <= value < num_graphs:
                    raise DatasetFormatError(f"{path}:{lineno}: index {value} out of range for {num_graphs} graphs")
                idx.append(value)
        out.append(idx)
    if set(out[0]) & set(out[1]):
        raise DatasetFormatError(f"{dataset_dir}: fold {fold} train and test indices overlap")
    return out[0], out[1]
