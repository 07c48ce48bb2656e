"""Low-level tensor kernels (aggregation backends)."""
from dfkd.ops.scatter import (
    WITH_TORCH_SCATTER,
    available_backends,
    get_backend,
    scatter,
    set_backend,
    use_backend,
)

__all__ = [
    "WITH_TORCH_SCATTER",
    "available_backends",
    "get_backend",
    "scatter",
    "set_backend",
    "use_backend",
]
