"""Train a teacher with plain PyTorch Geometric code, compress it with dfkd in one call, export the student.

    python docs/examples/compress_in_memory.py --out student.pt
    dfkd export --model student.pt --out student.onnx

The teacher is an ordinary PyG module of this script (no dfkd model, no dfkd checkpoint); dfkd sees only the
module, how its node features are encoded and its class count. Nothing is downloaded: MUTAG ships with dfkd.
"""
from __future__ import annotations

import argparse

import torch
from torch import nn
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GINConv, global_add_pool

import dfkd


class Teacher(nn.Module):
    """A 3-layer GIN with BatchNorm and sum pooling, written the way a PyG user would."""

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 64):
        super().__init__()
        self.convs = nn.ModuleList()
        for i in range(3):
            mlp = nn.Sequential(nn.Linear(in_channels if i == 0 else hidden, hidden), nn.BatchNorm1d(hidden),
                                nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
            self.convs.append(GINConv(mlp))
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x, edge_index, batch):
        for conv in self.convs:
            x = conv(x, edge_index)
        return self.head(global_add_pool(x, batch))


def train_teacher(dataset, epochs: int, seed: int) -> Teacher:
    torch.manual_seed(seed)
    train, _ = dataset.fold(1)
    model = Teacher(dataset.num_features, dataset.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    loader = DataLoader([dataset[i] for i in train], batch_size=32, shuffle=True)
    model.train()
    for _ in range(epochs):
        for batch in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(batch.x, batch.edge_index, batch.batch), batch.y).backward()
            opt.step()
    return model.eval()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="student.pt", help="student checkpoint (for dfkd export / evaluate)")
    p.add_argument("--teacher-epochs", type=int, default=100)
    p.add_argument("--epochs", type=int, default=400, help="distillation epochs")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    dataset = dfkd.load_dataset("MUTAG")
    teacher = train_teacher(dataset, args.teacher_epochs, args.seed)

    # The one call: teacher module in, trained student module out (and its checkpoint written to --out).
    student = dfkd.compress(teacher, "gin-2-32", num_classes=dataset.num_classes, features=dataset.feature_spec,
                            config=dfkd.DistillConfig(epochs=args.epochs, seed=args.seed), out=args.out,
                            show_progress=False)

    _, test = dataset.fold(1)
    graphs = [dataset[i] for i in test]
    scores = dfkd.evaluate(student, graphs, teacher=teacher)
    print(f"MUTAG fold 1, {len(graphs)} test graphs: teacher {scores.teacher_accuracy:.3f}, student "
          f"{scores.accuracy:.3f}, agreement {scores.agreement:.3f}; student saved to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
