"""Configuration dataclasses shared by the API, the CLI and checkpoints.

Every config round-trips through plain Python types (``to_dict`` /
``from_dict``) so it can live inside a ``weights_only`` checkpoint and rebuild
the object it describes with one call.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Optional, Sequence, Type, TypeVar

T = TypeVar("T", bound="Config")


class Config:
    """Mixin: dict round-trip with a clear error on unknown keys."""

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: Type[T], data: Dict[str, Any]) -> T:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s) {unknown}: known fields are {sorted(names)}")
        return cls(**data)

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclasses.dataclass
class ModelConfig(Config):
    """Everything needed to rebuild a graph-classification model.

    Args:
        arch: registered architecture name (``gin``, ``gcn``, ``sage``, ``mlp``).
        in_channels: node-feature width ``F``.
        out_channels: number of classes (or regression targets).
        num_layers: message-passing layers.
        hidden: hidden width.
        dropout: dropout before the prediction head.
        batch_norm: BatchNorm after every layer (and inside GIN's MLP).
        residual: add the layer input to its output when widths match.
        pool: graph readout, ``sum``, ``mean`` or ``max``.
        jk: ``cat`` pools every layer (input included) and concatenates them,
            as GIN's readout does; ``last`` pools the last layer only.
        bias_after_propagation: ``gcn`` only: each layer adds its bias after the normalised propagation,
            ``Â X W + b``, as PyTorch Geometric's ``GCNConv`` does, instead of before it, ``Â (X W + b)``
            (dfkd's default, which its zoo checkpoints were trained with).
    """

    arch: str = "gin"
    in_channels: int = 1
    out_channels: int = 2
    num_layers: int = 5
    hidden: int = 64
    dropout: float = 0.5
    batch_norm: bool = True
    residual: bool = False
    pool: str = "sum"
    jk: str = "cat"
    bias_after_propagation: bool = False

    def __post_init__(self) -> None:
        if self.num_layers < 1 or self.hidden < 1 or self.in_channels < 1 or self.out_channels < 1:
            raise ValueError(
                f"invalid model size (layers={self.num_layers}, hidden={self.hidden}, "
                f"in={self.in_channels}, out={self.out_channels}): all must be >= 1"
            )
        if self.pool not in ("sum", "mean", "max"):
            raise ValueError(f"unknown pool {self.pool!r}: choose sum, mean or max")
        if self.jk not in ("cat", "last"):
            raise ValueError(f"unknown jk {self.jk!r}: choose cat or last")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.bias_after_propagation and self.arch != "gcn":
            raise ValueError(f"bias_after_propagation applies to gcn layers only, not {self.arch!r}: leave it False")

    @property
    def short_name(self) -> str:
        """Compact form used by the CLI, e.g. ``gin-5-64``."""
        return f"{self.arch}-{self.num_layers}-{self.hidden}"


@dataclasses.dataclass
class FeatureSpec(Config):
    """How node features are encoded, so generators can synthesise valid inputs.

    Args:
        dim: feature width ``F``.
        encoding: ``one_hot`` (one-hot of a categorical node tag), ``degree``
            (one-hot of the node degree, clipped at ``max_degree``) or
            ``continuous``.
        categories: raw tag value of each one-hot column (``one_hot`` only).
        max_degree: largest degree column (``degree`` only).
    """

    dim: int
    encoding: str = "one_hot"
    categories: list = dataclasses.field(default_factory=list)
    max_degree: int = 0

    def __post_init__(self) -> None:
        if self.encoding not in ("one_hot", "degree", "continuous"):
            raise ValueError(f"unknown feature encoding {self.encoding!r}: choose one_hot, degree or continuous")
        if self.dim < 1:
            raise ValueError(f"feature dim must be >= 1, got {self.dim}")

    @property
    def categorical(self) -> bool:
        """Whether each node's features are a one-hot vector."""
        return self.encoding in ("one_hot", "degree")


def check_frequencies(values: Sequence[float], name: str) -> List[float]:
    """``values`` as a list of floats, or a one-line ``ValueError`` naming ``name`` when they are not a
    distribution's weights (finite, non-negative, not all zero)."""
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of numbers, one per node type, got {values!r}") from None
    if not out or any(not math.isfinite(v) or v < 0 for v in out) or sum(out) <= 0:
        raise ValueError(f"{name} must be non-negative numbers, one per node type, not all zero, got {values!r}")
    return out


def check_known_shares(values: Dict[Any, float], name: str) -> Dict[int, float]:
    """``values`` (``{column: share}`` of the node types whose shares are known) with integer columns and float
    shares, or a one-line ``ValueError`` naming ``name`` when the columns are not indices or the shares are not
    non-negative numbers summing to at most 1."""
    try:
        out = {int(column): float(share) for column, share in values.items()}
    except (TypeError, ValueError):
        raise ValueError(f"{name} must map feature columns to shares, e.g. {{2: 0.7, 0: 0.15}}, got {values!r}") \
            from None
    if not out or any(c < 0 for c in out) or any(not math.isfinite(v) or v < 0 for v in out.values()) \
            or sum(out.values()) > 1 + 1e-6:
        raise ValueError(f"{name} must map column indices >= 0 to non-negative shares summing to at most 1, "
                         f"got {values!r}")
    return out


@dataclasses.dataclass
class GraphSizeStats(Config):
    """Size statistics of the graphs a model was trained on (no graphs themselves).

    Generators use them to draw node counts and degree sequences; they are aggregate numbers only.

    Args:
        min_nodes, max_nodes, mean_nodes: node counts per graph.
        mean_degree: mean node degree over all nodes.
        degree_var: variance of the node degree over all nodes (``None`` in checkpoints written before
            dfkd 0.2): with ``mean_degree`` it sets how regular the synthetic structure is.
        type_frequencies: ``[F]`` share of the nodes in each column of a one-hot node feature (node types;
            degree buckets for a degree encoding), summing to 1; ``None`` for continuous features and in
            checkpoints written before it was recorded. The generators draw node types from it.
    """

    min_nodes: int
    max_nodes: int
    mean_nodes: float
    mean_degree: float
    degree_var: Optional[float] = None
    type_frequencies: Optional[List[float]] = None

    def __post_init__(self) -> None:
        if self.type_frequencies is not None:
            self.type_frequencies = check_frequencies(self.type_frequencies, "size_stats.type_frequencies")

    @property
    def degree_dispersion(self) -> Optional[float]:
        """Index of dispersion of the node degree, ``var / mean`` (1 for Erdős–Rényi graphs; molecules
        are about 0.3, social ego-networks above 5), or ``None`` when unknown."""
        if self.degree_var is None or self.mean_degree <= 0:
            return None
        return self.degree_var / self.mean_degree
