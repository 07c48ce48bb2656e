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
