"""Low-level tensor kernels (aggregation backends, sparse or dense neighbourhood aggregation)."""
from dfkd.ops.adjacency import (
    PROPAGATION_MODES,
    DenseBlockAdjacency,
    SparseAdjacency,
    build_adjacency,
    get_propagation,
    prefers_dense,
    set_propagation,
    use_propagation,
)
from dfkd.ops.scatter import (
    WITH_TORCH_SCATTER,
    available_backends,
    get_backend,
    scatter,
    set_backend,
    use_backend,
)

__all__ = [
    "PROPAGATION_MODES",
    "DenseBlockAdjacency",
    "SparseAdjacency",
    "build_adjacency",
    "get_propagation",
    "prefers_dense",
    "set_propagation",
    "use_propagation",
    "WITH_TORCH_SCATTER",
    "available_backends",
    "get_backend",
    "scatter",
    "set_backend",
    "use_backend",
]
