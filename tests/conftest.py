import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    # Processed-dataset caches go to a per-session temp dir, never the user's home.
    os.environ["DFKD_CACHE"] = str(tmp_path_factory.mktemp("dfkd-cache"))
    torch.set_num_threads(2)
    yield


@pytest.fixture(scope="session")
def mutag():
    import dfkd

    return dfkd.load_dataset("MUTAG")


@pytest.fixture
def toy_graph():
    """Two small graphs in one batch: a triangle (nodes 0-2) and a path (3-5)."""
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    pairs = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5)]
    src = [a for a, b in pairs] + [b for a, b in pairs]
    dst = [b for a, b in pairs] + [a for a, b in pairs]
    edge_index = torch.tensor([src, dst])
    batch = torch.tensor([0, 0, 0, 1, 1, 1])
    return x, edge_index, batch


@pytest.fixture(scope="session")
def tiny_teacher(mutag, tmp_path_factory):
    """A small GIN teacher briefly trained on MUTAG fold 1 (with its checkpoint path)."""
    import dfkd
    from dfkd.train import TrainConfig

    result = dfkd.train_teacher(mutag, "gin-3-16", fold=1, config=TrainConfig(epochs=20, seed=0), show_progress=False)
    path = str(tmp_path_factory.mktemp("teacher") / "teacher.pt")
    result.checkpoint.save(path)
    return dfkd.load_checkpoint(path)


@pytest.fixture(scope="session")
def cli_teacher(tmp_path_factory):
    """A GIN-3-16 teacher checkpoint trained by `dfkd train-teacher` on MUTAG fold 1 (its path)."""
    from dfkd.cli import main

    path = str(tmp_path_factory.mktemp("cli") / "teacher.pt")
    assert main(["train-teacher", "--dataset", "MUTAG", "--arch", "gin-3-16", "--epochs", "15", "--out", path,
                 "--quiet"]) == 0
    return path


def _check_valid_graphs(graphs, spec, low, high):
    """Every graph of a SyntheticGraphSet: node count in [low, high], symmetric, no self-loops,
    edges inside the graph, features ``[n, spec.dim]`` (one-hot rows for categorical specs)."""
    assert torch.all((graphs.num_nodes >= low) & (graphs.num_nodes <= high))
    for g in range(len(graphs)):
        data = graphs[g]
        ei = data.edge_index
        assert ei.numel() == 0 or (ei.min() >= 0 and ei.max() < data.num_nodes)
        assert not torch.any(ei[0] == ei[1]), "self-loop"
        pairs = set(map(tuple, ei.t().tolist()))
        assert all((b, a) in pairs for a, b in pairs), "not symmetric"
        assert data.x.shape == (data.num_nodes, spec.dim)
        if spec.categorical:
            assert torch.all(data.x.sum(-1) == 1) and set(data.x.unique().tolist()) <= {0.0, 1.0}


@pytest.fixture
def check_valid_graphs():
    return _check_valid_graphs
