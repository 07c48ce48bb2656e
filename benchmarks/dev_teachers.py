"""Development teachers nobody tuned dfkd for: plain PyTorch Geometric models, trained with plain code.

They stand for "a trained GNN from elsewhere": none is a dfkd zoo model, none is trained by
``dfkd.train``, and they are saved as bare ``state_dict``s, so dfkd meets them only through the foreign
path (``--teacher-module benchmarks.dev_teachers:build`` / :func:`dfkd.checkpoint.load_code_teacher`),
with no statistics of their training graphs. Families:

* ``resgcn``: GFKD-reference style GCN-5-64: GCNConv + BatchNorm + residual connections, sum pooling,
  dropout before a two-layer head.
* ``sage``: GraphSAGE (mean aggregation) ×3, BatchNorm, mean pooling.
* ``gin_nobn``: GIN ×3 without any normalisation, sum pooling.
* ``gat``: GAT ×3 (4 heads averaged) with LayerNorm, mean pooling.
* ``gcn``: PyG's GCNConv ×3, BatchNorm, mean pooling (added 2026-12-08, when dfkd began to recognise plain PyG
  GCN stacks as the zoo GCN they compute).

Each is trained per seed on GFKD's stratified 70% (10% of it kept to pick the best epoch, as
``dfkd.train`` does, so the benchmark's splits coincide), Adam 0.01 halved every 50 epochs; its test
accuracy, the test split's majority class and the true statistics of its training graphs (never shown to
dfkd's teacher-only path) are appended to ``runs/dev_teachers.jsonl``.

    python benchmarks/dev_teachers.py --datasets MUTAG PTC --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GATConv, GCNConv, GINConv, SAGEConv, global_add_pool, global_mean_pool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DEFAULT_DATA_ROOT, RUNS, append_run, header_lines, provenance, table,  # noqa: E402
                    teacher_recipe)

RAW = os.path.join(RUNS, "dev_teachers.jsonl")
CACHE = os.path.join(RUNS, "dev_teachers")
FAMILIES = ("resgcn", "sage", "gin_nobn", "gat", "gcn")


class ResGCN(nn.Module):
    """GCN-5-64 in the style of GFKD's reference code: residual GCN blocks with BatchNorm, sum pooling."""

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 64, layers: int = 5):
        super().__init__()
        self.embed = nn.Linear(in_channels, hidden)
        self.convs = nn.ModuleList([GCNConv(hidden, hidden) for _ in range(layers - 1)])
        self.norms = nn.ModuleList([nn.BatchNorm1d(hidden) for _ in range(layers - 1)])
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, num_classes))

    def forward(self, x, edge_index, batch):
        h = torch.relu(self.embed(x))
        for conv, norm in zip(self.convs, self.norms):
            h = h + torch.relu(norm(conv(h, edge_index)))
        return self.head(global_add_pool(h, batch))


class NormedStack(nn.Module):
    """``conv`` layers, each followed by BatchNorm and ReLU, mean pooling, a linear head."""

    conv = SAGEConv

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 64, layers: int = 3):
        super().__init__()
        widths = [in_channels] + [hidden] * layers
        self.convs = nn.ModuleList([self.conv(a, b) for a, b in zip(widths[:-1], widths[1:])])
        self.norms = nn.ModuleList([nn.BatchNorm1d(hidden) for _ in range(layers)])
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x, edge_index, batch):
        for conv, norm in zip(self.convs, self.norms):
            x = torch.relu(norm(conv(x, edge_index)))
        return self.head(global_mean_pool(x, batch))


class Sage(NormedStack):
    """GraphSAGE with mean aggregation and BatchNorm, mean pooling."""

    conv = SAGEConv


class Gcn(NormedStack):
    """PyG's GCNConv with BatchNorm, mean pooling."""

    conv = GCNConv


class GinNoNorm(nn.Module):
    """GIN without any normalisation, sum pooling."""

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 64, layers: int = 3):
        super().__init__()
        widths = [in_channels] + [hidden] * layers
        self.convs = nn.ModuleList([GINConv(nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Linear(b, b)))
                                    for a, b in zip(widths[:-1], widths[1:])])
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x, edge_index, batch):
        for conv in self.convs:
            x = torch.relu(conv(x, edge_index))
        return self.head(global_add_pool(x, batch))


class Gat(nn.Module):
    """GAT (4 heads, averaged) with LayerNorm, mean pooling."""

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 64, layers: int = 3):
        super().__init__()
        widths = [in_channels] + [hidden] * layers
        self.convs = nn.ModuleList([GATConv(a, b, heads=4, concat=False) for a, b in zip(widths[:-1], widths[1:])])
        self.norms = nn.ModuleList([nn.LayerNorm(hidden) for _ in range(layers)])
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x, edge_index, batch):
        for conv, norm in zip(self.convs, self.norms):
            x = torch.relu(norm(conv(x, edge_index)))
        return self.head(global_mean_pool(x, batch))


def build(name: str, in_channels: int, num_classes: int) -> nn.Module:
    """The factory ``--teacher-module benchmarks.dev_teachers:build`` calls (``--teacher-kwargs``)."""
    classes = {"resgcn": ResGCN, "sage": Sage, "gin_nobn": GinNoNorm, "gat": Gat, "gcn": Gcn}
    if name not in classes:
        raise ValueError(f"unknown development teacher {name!r}: choose one of {', '.join(classes)}")
    return classes[name](in_channels, num_classes)


def splits(dataset, seed: int) -> Tuple[List[int], List[int], List[int]]:
    """``(fit, val, test)`` indices: the same as a dfkd hold-out teacher of this seed (70/30, 10% of the 70%
    for validation), so that students of both kinds are scored on the same graphs."""
    from dfkd.train import recorded_splits

    return recorded_splits(dataset, {"split": {"kind": "holdout", "ratio": 0.3, "seed": seed}, "val_ratio": 0.1,
                                     "seed": seed})


def path_of(name: str, family: str, seed: int) -> str:
    return os.path.join(CACHE, f"{name}-{family}-seed{seed}.pt")


def train(dataset, name: str, family: str, seed: int, epochs: int) -> Dict:
    """Train one teacher with plain PyTorch, keep its best validation epoch, save its state_dict."""
    from dfkd.data import size_stats
    from dfkd.evaluate import majority_accuracy

    fit, val, test = splits(dataset, seed)
    torch.manual_seed(seed)
    model = build(family, dataset.num_features, dataset.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, 50, 0.5)
    loader = DataLoader([dataset[i] for i in fit], batch_size=32, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))

    def accuracy(idx):
        model.eval()
        with torch.no_grad():
            batches = DataLoader([dataset[i] for i in idx], batch_size=256)
            hits = sum(int((model(b.x, b.edge_index, b.batch).argmax(-1) == b.y).sum()) for b in batches)
        return hits / len(idx)

    best, best_state, start = -1.0, None, time.perf_counter()
    for _ in range(epochs):
        model.train()
        for b in loader:
            if b.num_graphs < 2:
                continue
            opt.zero_grad()
            F.cross_entropy(model(b.x, b.edge_index, b.batch), b.y).backward()
            opt.step()
        sched.step()
        score = accuracy(val)
        if score >= best:
            best, best_state = score, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    os.makedirs(CACHE, exist_ok=True)
    torch.save(model.state_dict(), path_of(name, family, seed))
    stats = size_stats([dataset[i] for i in fit + val])
    labels = torch.tensor([dataset.labels[i] for i in test])
    return dict(benchmark="dev_teachers", dataset=name, family=family, seed=seed, epochs=epochs,
                val_accuracy=best, test_accuracy=accuracy(test), majority_accuracy=majority_accuracy(labels),
                true_stats=stats.to_dict(), train_s=time.perf_counter() - start)


def ensure(dataset, name: str, family: str, seed: int) -> str:
    """Path of the teacher's state_dict, trained (and recorded in the raw runs) when missing."""
    path = path_of(name, family, seed)
    if not os.path.exists(path):
        run = train(dataset, name, family, seed, teacher_recipe(name)["epochs"])
        append_run(RAW, {**run, **provenance()})
    return path


def main(argv=None) -> int:
    import dfkd

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["MUTAG", "PTC", "PROTEINS", "IMDBBINARY", "NCI1"])
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in args.datasets:
        dataset = dfkd.load_dataset(name, root=args.data_root)
        for family in args.families:
            for seed in args.seeds:
                print(name, family, seed, ensure(dataset, name, family, seed), flush=True)
    return 0


def render(runs: List[Dict]) -> str:
    runs = sorted((r for r in runs if r.get("benchmark") == "dev_teachers"),
                  key=lambda r: (r["dataset"], r["family"], r["seed"]))
    rows = [[r["dataset"], r["family"], r["seed"], f"{r['test_accuracy']:.3f}", f"{r['majority_accuracy']:.3f}",
             f"{r['test_accuracy'] - r['majority_accuracy']:+.3f}", f"{r['val_accuracy']:.3f}",
             f"{r['true_stats']['mean_degree']:.2f}", f"{r['train_s']:.0f}"] for r in runs]
    return "\n".join(["# Development teachers (plain PyTorch Geometric, trained outside dfkd)", "",
                      *header_lines(runs, ["dev_teachers.jsonl"]),
                      "- GFKD's 70/30 hold-out per seed; the teacher keeps its best epoch on 10% of its 70%.", "",
                      *table(["dataset", "family", "seed", "test acc", "majority", "gain", "val acc",
                              "true mean degree", "train s"], rows), ""])


if __name__ == "__main__":
    sys.exit(main())
