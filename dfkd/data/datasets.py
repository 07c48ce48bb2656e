"""Graph datasets: GIN text format (bundled or on disk), PyG's TUDataset and the synthetic regression tasks."""
from __future__ import annotations

import hashlib
import json
import os
from typing import Dict, List, Optional, Tuple

import torch
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.utils import degree

from dfkd.config import FeatureSpec, GraphSizeStats
from dfkd.data.gin_format import RawGraph, read_fold, read_gin_txt
from dfkd.data.splits import stratified_kfold, stratified_split

BUNDLED_ROOT = os.path.join(os.path.dirname(__file__), "bundled")
BUNDLED = ("MUTAG", "PTC")
KNOWN = ("MUTAG", "PTC", "PROTEINS", "IMDBBINARY", "NCI1")
_ALIASES = {"PTC_MR": "PTC", "IMDB-BINARY": "IMDBBINARY", "IMDB-B": "IMDBBINARY", "IMDB_BINARY": "IMDBBINARY"}
_PROCESS_VERSION = 1


def canonical_name(name: str) -> str:
    """Dataset name in the spelling of the GIN files (``PTC_MR`` → ``PTC``)."""
    upper = name.strip().upper()
    return _ALIASES.get(upper, upper)


def default_cache_dir() -> str:
    """Where processed datasets are cached: ``$DFKD_CACHE`` or ``~/.cache/dfkd``."""
    return os.environ.get("DFKD_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "dfkd")


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def encode_graphs(raw: List[RawGraph]) -> Tuple[List[Data], FeatureSpec, List[int]]:
    """Turn raw graphs into PyG ``Data`` with one-hot features and labels 0..C-1.

    Labels map to classes in sorted order of the raw values; tags likewise to
    one-hot columns. When every node carries the same tag (IMDB), features are
    the one-hot node degree clipped at the largest degree seen.

    Returns:
        ``(data_list, feature_spec, label_values)`` where ``label_values[c]`` is
        the raw label of class ``c``.
    """
    label_values = sorted({g.label for g in raw})
    label_of = {v: i for i, v in enumerate(label_values)}
    tag_values = sorted({t for g in raw for t in g.tags})
    edge_indices = []
    for g in raw:
        ei = torch.tensor(g.edges, dtype=torch.long).t().reshape(2, -1)
        # Edges are listed from both ends; make sure, and drop duplicates.
        ei = torch.cat([ei, ei.flip(0)], dim=1)
        ei = torch.unique(ei, dim=1) if ei.numel() else ei
        edge_indices.append(ei)
    if len(tag_values) > 1:
        spec = FeatureSpec(dim=len(tag_values), encoding="one_hot", categories=tag_values)
        col = {v: i for i, v in enumerate(tag_values)}
        columns = [torch.tensor([col[t] for t in g.tags], dtype=torch.long) for g in raw]
    else:
        degrees = [degree(ei[1], len(g.tags)).long() for g, ei in zip(raw, edge_indices)]
        max_deg = max((int(d.max()) for d in degrees if d.numel()), default=0)
        spec = FeatureSpec(dim=max_deg + 1, encoding="degree", max_degree=max_deg)
        columns = [d.clamp(max=max_deg) for d in degrees]
    data_list = []
    for g, ei, cols in zip(raw, edge_indices, columns):
        x = torch.nn.functional.one_hot(cols, spec.dim).float() if cols.numel() else torch.zeros(0, spec.dim)
        data = Data(x=x, edge_index=ei, y=torch.tensor([label_of[g.label]]), num_nodes=len(g.tags))
        if g.attrs is not None:
            data.node_attr = torch.tensor(g.attrs, dtype=torch.float)
        data_list.append(data)
    return data_list, spec, label_values


def size_stats(data_list) -> GraphSizeStats:
    """Aggregate node-count and degree statistics of a list of graphs, and the share of each one-hot node
    feature column when every graph's ``x`` is one-hot."""
    nodes = torch.tensor([d.num_nodes for d in data_list], dtype=torch.float)
    degrees = torch.cat([torch.bincount(d.edge_index[0], minlength=d.num_nodes) for d in data_list]).float()
    return GraphSizeStats(
        min_nodes=int(nodes.min()), max_nodes=int(nodes.max()), mean_nodes=round(float(nodes.mean()), 3),
        mean_degree=round(float(degrees.mean()), 3) if degrees.numel() else 0.0,
        degree_var=round(float(degrees.var(unbiased=False)), 3) if degrees.numel() else 0.0,
        type_frequencies=one_hot_frequencies(data_list),
    )


def one_hot_frequencies(data_list) -> Optional[List[float]]:
    """``[F]`` share of the nodes in each column of the graphs' one-hot ``x`` (rounded to 1e-5), or ``None``
    when some graph has no ``x`` or a row that is not one-hot."""
    xs = [getattr(d, "x", None) for d in data_list]
    if not xs or any(x is None or x.dim() != 2 for x in xs) or len({x.size(1) for x in xs}) != 1:
        return None
    x = torch.cat(xs)
    if x.size(0) == 0 or not bool(((x == 0) | (x == 1)).all()) or not bool((x.sum(1) == 1).all()):
        return None
    return [round(float(v), 5) for v in x.sum(0) / x.size(0)]


class GINFormatDataset(InMemoryDataset):
    """A GIN-format dataset directory (``<root>/<name>/<name>.txt`` + ``10fold_idx/``).

    Processing is cached under ``cache_dir`` keyed by the file's checksum, so
    an edited file is re-read.

    Attributes:
        feature_spec (FeatureSpec): how node features are encoded.
        label_values (list): raw label of each class index.
    """

    def __init__(self, root: str, name: str, cache_dir: Optional[str] = None):
        self.name = name
        self.dataset_dir = os.path.join(root, name)
        self.txt_path = os.path.join(self.dataset_dir, f"{name}.txt")
        if not os.path.isfile(self.txt_path):
            raise FileNotFoundError(f"dataset file not found: {self.txt_path}")
        self.checksum = _sha256(self.txt_path)
        self._cache = os.path.join(cache_dir or default_cache_dir(), "processed", f"{name}-{self.checksum[:16]}")
        super().__init__(root=root, log=False)
        self.load(self.processed_paths[0])
        with open(self.processed_paths[1], "r", encoding="utf-8") as handle:
            meta = json.load(handle)
        self.feature_spec = FeatureSpec.from_dict(meta["feature_spec"])
        self.label_values = meta["label_values"]

    @property
    def raw_dir(self) -> str:
        return self.dataset_dir

    @property
    def processed_dir(self) -> str:
        return self._cache

    @property
    def raw_file_names(self) -> List[str]:
        return [f"{self.name}.txt"]

    @property
    def processed_file_names(self) -> List[str]:
        return [f"data-v{_PROCESS_VERSION}.pt", f"meta-v{_PROCESS_VERSION}.json"]

    def download(self) -> None:  # pragma: no cover - the file's presence is checked in __init__
        raise FileNotFoundError(f"dataset file not found: {self.txt_path}")

    def process(self) -> None:
        data_list, spec, label_values = encode_graphs(read_gin_txt(self.txt_path))
        self.save(data_list, self.processed_paths[0])
        meta = {"feature_spec": spec.to_dict(), "label_values": label_values, "sha256": self.checksum}
        tmp = self.processed_paths[1] + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(meta, handle)
        os.replace(tmp, self.processed_paths[1])

    @property
    def label_mapping(self) -> Dict[str, int]:
        """Raw label (as a string, JSON-friendly) → class index."""
        return {str(v): i for i, v in enumerate(self.label_values)}

    def fold(self, k: int) -> Tuple[List[int], List[int]]:
        """Standard train/test indices of fold ``k`` (1..10)."""
        return read_fold(self.dataset_dir, k, len(self))

    @property
    def labels(self) -> List[int]:
        return self._data.y.view(-1).tolist()


def load_dataset(name: str, root: Optional[str] = None, cache_dir: Optional[str] = None) -> InMemoryDataset:
    """Load a graph dataset by name.

    Resolution order: ``SYNTH:TRIANGLES`` / ``SYNTH:CLUSTERING[:NUM_GRAPHS[:SEED]]`` makes a synthetic
    graph-regression dataset in memory (:func:`dfkd.data.make_regression_dataset`, offline and
    deterministic); ``TU:<NAME>`` loads PyG's ``TUDataset`` (downloads, needs
    internet); otherwise ``<root>/<NAME>/<NAME>.txt`` when ``root`` (or
    ``$DFKD_DATA_ROOT``) is given and holds it; otherwise the bundled copy
    (MUTAG, PTC).

    Every returned dataset has ``feature_spec``, ``label_values``, ``fold(k)``
    and ``labels``.
    """
    if name.strip().upper().startswith("SYNTH:"):
        from dfkd.data.synthetic_tasks import load_synthetic

        return load_synthetic(name)
    if name.upper().startswith("TU:"):
        return _load_tu(name[3:], root or default_cache_dir())
    canon = canonical_name(name)
    roots = [r for r in (root, os.environ.get("DFKD_DATA_ROOT")) if r]
    for candidate in roots:
        if os.path.isfile(os.path.join(candidate, canon, f"{canon}.txt")):
            return GINFormatDataset(candidate, canon, cache_dir)
    if canon in BUNDLED:
        return GINFormatDataset(BUNDLED_ROOT, canon, cache_dir)
    where = f" in {', '.join(roots)}" if roots else ""
    if canon in KNOWN:
        raise FileNotFoundError(
            f"dataset {canon!r} not found{where}: pass --data-root DIR with {canon}/{canon}.txt "
            f"(bundled: {', '.join(BUNDLED)})"
        )
    raise FileNotFoundError(
        f"unknown dataset {name!r}{where}: use one of {', '.join(KNOWN)} with --data-root, "
        f"a directory NAME/NAME.txt in GIN format, TU:NAME for PyG's TUDataset (online), "
        f"or SYNTH:TRIANGLES / SYNTH:CLUSTERING for a synthetic regression task"
    )


def _load_tu(name: str, root: str) -> InMemoryDataset:  # pragma: no cover - needs internet
    from torch_geometric.datasets import TUDataset

    dataset = TUDataset(os.path.join(root, "tu"), name)
    if dataset.num_node_features == 0:
        raise ValueError(f"TUDataset {name} has no node features: convert it to the GIN text format first")
    dataset.feature_spec = FeatureSpec(dim=dataset.num_node_features, encoding="continuous")
    dataset.label_values = list(range(dataset.num_classes))
    labels = dataset.y.view(-1).tolist()
    folds = stratified_kfold(labels, 10, seed=0)
    dataset.fold = lambda k: folds[k - 1]
    dataset.labels = labels
    return dataset


def split_indices(dataset, fold: Optional[int] = None, holdout: Optional[float] = None,
                  seed: int = 0) -> Tuple[List[int], List[int], Dict[str, object]]:
    """Train/test indices: standard ``fold`` (1..10) or a stratified ``holdout`` fraction.

    Returns ``(train_idx, test_idx, split)`` where ``split`` describes the choice
    (stored in checkpoints so evaluation can use the same test graphs).
    """
    if fold is not None and holdout is not None:
        raise ValueError("give either a fold or a holdout ratio, not both")
    if holdout is not None:
        if not 0.0 < holdout < 1.0:  # NaN fails too
            raise ValueError(f"--holdout (test fraction) must be in (0, 1), got {holdout}")
        train, test = stratified_split(dataset.labels, holdout, seed)
        return train, test, {"kind": "holdout", "ratio": holdout, "seed": seed}
    fold = 1 if fold is None else fold
    train, test = dataset.fold(fold)
    return train, test, {"kind": "fold", "fold": fold}


def split_from_record(dataset, split: Dict[str, object]) -> Tuple[List[int], List[int]]:
    """Re-create the split described by :func:`split_indices`' record."""
    if split.get("kind") == "holdout":
        return stratified_split(dataset.labels, float(split["ratio"]), int(split["seed"]))
    return dataset.fold(int(split.get("fold", 1)))
