"""Export a graph classifier for deployment (TorchScript or ONNX), checked against PyTorch.

The exported model has one fixed signature, the tensors of a PyG ``Batch``::

    logits = exported(x, edge_index, batch, ptr)
    # x [N, F] float32, edge_index [2, E] int64, batch [N] int64 (graph of every node),
    # ptr [B + 1] int64 (PyG's Batch.ptr; only its length, the number of graphs + 1, is used)
    # -> logits [B, C] float32

Every export is run on graphs other than the ones it was traced with (a batch of several graphs and a
single graph) and compared with the PyTorch model; a difference above the tolerance is an error and
no file is left behind. ::

    from dfkd.export import export_checkpoint, load_exported
    result = export_checkpoint(dfkd.load_checkpoint("student.pt"), "student.onnx")
    model = load_exported("student.onnx")          # callable on a PyG Batch, returns a torch Tensor
    logits = model(batch)

TorchScript goes through ``torch.jit.trace`` (deprecated by PyTorch 2.13 in favour of ``torch.export``,
still the format that loads in libtorch; the deprecation warning is logged once, not hidden). ONNX uses
the ``torch.export``-based exporter and needs ``pip install 'dfkd[onnx]'`` (onnx, onnxscript and
onnxruntime): the older TorchScript-based ONNX exporter mistranslates the scatter-add of message
passing (``index_add`` with repeated indices) and is not used.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import tempfile
import time
import warnings
from typing import Any, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from dfkd.config import FeatureSpec, GraphSizeStats
from dfkd.ops import use_propagation

logger = logging.getLogger(__name__)

FORMATS = ("torchscript", "onnx")
INPUT_NAMES = ("x", "edge_index", "batch", "ptr")
OUTPUT_NAME = "logits"
DEFAULT_TOLERANCE = 1e-4
ONNX_HINT = "pip install 'dfkd[onnx]'"


class ExportError(ValueError):
    """An export that cannot be made or does not match PyTorch; the message names the fix."""


class DeployableModel(nn.Module):
    """A graph classifier behind the fixed signature ``forward(x, edge_index, batch, ptr) -> logits``.

    dfkd zoo models get the number of graphs from ``ptr``'s length, so it stays dynamic in the
    exported graph. Any other module is called as ``model(x, edge_index, batch)``; if it derives the
    number of graphs from ``batch`` values, tracing freezes it, which the verification catches.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        from dfkd.nn import GraphClassifier

        self.model = model
        self.zoo = isinstance(model, GraphClassifier)

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor, ptr: Tensor) -> Tensor:
        if self.zoo:
            return self.model(x, edge_index, batch, num_graphs=ptr.size(0) - 1)
        return self.model(x, edge_index, batch)


def batch_inputs(batch: Any) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(x, edge_index, batch, ptr)`` of a PyG ``Batch`` (or a single ``Data``), in the exported dtypes."""
    if not isinstance(batch, Batch):
        batch = Batch.from_data_list([batch])
    return (batch.x.float(), batch.edge_index.long(), batch.batch.long(), batch.ptr.long())


def example_graphs(feature_spec: Optional[FeatureSpec], num_graphs: int = 64, seed: int = 0,
                   size_stats: Optional[GraphSizeStats] = None, in_channels: Optional[int] = None) -> List[Data]:
    """Random graphs shaped like a model's input, for checking an export without any dataset.

    Node counts from the size statistics (else 5-25), Erdős–Rényi edges at the training mean degree
    (else 2), features one-hot (categorical encodings; degree one-hot follows the edges) or Gaussian.
    """
    if feature_spec is None and in_channels is None:
        raise ExportError("no feature spec nor input width to make check graphs from: pass graphs=")
    dim = feature_spec.dim if feature_spec is not None else int(in_channels)
    gen = torch.Generator().manual_seed(seed)
    low = max(2, size_stats.min_nodes) if size_stats else 5
    high = max(low, min(size_stats.max_nodes, round(2 * size_stats.mean_nodes) - low)) if size_stats else 25
    mean_degree = size_stats.mean_degree if size_stats and size_stats.mean_degree > 0 else 2.0
    graphs = []
    for _ in range(num_graphs):
        n = int(torch.randint(low, high + 1, (1,), generator=gen))
        p = min(1.0, mean_degree / max(1, n - 1))
        upper = torch.triu(torch.rand(n, n, generator=gen) < p, diagonal=1)
        pairs = upper.nonzero().t()
        edge_index = torch.cat([pairs, pairs.flip(0)], dim=1)
        if feature_spec is not None and feature_spec.encoding == "degree":
            deg = torch.bincount(edge_index[1], minlength=n).clamp(max=dim - 1)
            x = torch.nn.functional.one_hot(deg, dim).float()
        elif feature_spec is None or feature_spec.categorical:
            x = torch.nn.functional.one_hot(torch.randint(dim, (n,), generator=gen), dim).float()
        else:
            x = torch.randn(n, dim, generator=gen)
        graphs.append(Data(x=x, edge_index=edge_index, num_nodes=n))
    return graphs


@dataclasses.dataclass
class ExportResult:
    """What :func:`export_model` wrote and how closely it matches PyTorch."""

    path: str
    format: str
    max_abs_diff: float
    tolerance: float
    num_graphs: int
    source: str
    num_classes: int
    seconds: float
    input_names: Tuple[str, ...] = INPUT_NAMES

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def format_for(path: str, format: Optional[str] = None) -> str:
    """The export format: ``format`` when given, else ``onnx`` for a ``.onnx`` file, else ``torchscript``."""
    if format is None:
        format = "onnx" if path.lower().endswith(".onnx") else "torchscript"
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}: choose one of {', '.join(FORMATS)}")
    return format


def _require_onnx() -> None:
    missing = []
    for module in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ExportError(f"ONNX export needs {', '.join(missing)}, not installed: {ONNX_HINT}")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(exc: Any) -> str:
    lines = [line for line in _ANSI.sub("", str(exc)).strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]


def _root_cause(exc: BaseException) -> str:
    """First line of the innermost exception of a chain (the exporters wrap the real reason)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _write_torchscript(module: DeployableModel, example: Tuple[Tensor, ...], path: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = torch.jit.trace(module, example, check_trace=False)
        torch.jit.save(traced, path)
    deprecated = [w for w in caught if "deprecated" in str(w.message)]
    if deprecated:
        logger.warning("TorchScript export uses torch.jit.trace, which PyTorch %s deprecates (%s); the file "
                       "loads with torch.jit.load today, ONNX (--format onnx) is the long-term route",
                       torch.__version__.split("+")[0], _first_line(deprecated[0].message))
    for w in caught:
        if w not in deprecated:  # anything else the tracer says (e.g. a value frozen into the trace)
            logger.warning("torch.jit.trace: %s", _first_line(w.message))


# Exporter notices that say nothing about a graph model's export; they go to dfkd's DEBUG log instead.
_IRRELEVANT_NOTICES = {
    "torch.onnx._internal.exporter._registration": "torchvision is not installed",  # vision ops skipped
    "onnx_ir._convenience": "Attribute type is ambiguous because it is an empty sequence",  # empty ints
}


class _DemoteNotice(logging.Filter):
    """Moves one known, irrelevant exporter notice to dfkd's DEBUG log; every other record passes."""

    def __init__(self, fragment: str):
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        if self.fragment in record.getMessage():
            logger.debug("onnx exporter (%s): %s", record.name, record.getMessage())
            return False
        return True


def _write_onnx(module: DeployableModel, example: Tuple[Tensor, ...], path: str) -> None:
    _require_onnx()
    from torch.export import Dim

    dynamic = {"x": {0: Dim.DYNAMIC}, "edge_index": {1: Dim.DYNAMIC}, "batch": {0: Dim.DYNAMIC},
               "ptr": {0: Dim.DYNAMIC}}
    demoted = [(logging.getLogger(name), _DemoteNotice(fragment)) for name, fragment in _IRRELEVANT_NOTICES.items()]
    for log, notice in demoted:
        log.addFilter(notice)
    # The ONNX optimiser logs every pass at INFO; show its chatter only when dfkd itself logs at DEBUG.
    chatty = {name: logging.getLogger(name) for name in ("onnxscript", "onnx_ir")}
    levels = {name: log.level for name, log in chatty.items()}
    if not logger.isEnabledFor(logging.DEBUG):
        for log in chatty.values():
            log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.onnx.export(module, example, path, input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
                              dynamic_shapes=dynamic, dynamo=True, external_data=False, verbose=False)
    finally:
        for log, notice in demoted:
            log.removeFilter(notice)
        for name, log in chatty.items():
            log.setLevel(levels[name])
    for w in caught:  # the exporter's own deprecations are PyTorch's business; anything else is shown
        internal = issubclass(w.category, (DeprecationWarning, FutureWarning)) or "deprecated" in str(w.message)
        logger.log(logging.DEBUG if internal else logging.WARNING, "onnx exporter: %s", _first_line(w.message))


class ExportedModel:
    """A loaded export, callable on a PyG ``Batch``/``Data`` or on ``(x, edge_index, batch, ptr)``;
    returns ``[B, C]`` logits as a CPU tensor."""

    def __init__(self, path: str, format: Optional[str] = None):
        self.path, self.format = path, format_for(path, format)
        if not os.path.isfile(path):
            raise ExportError(f"exported model not found: {path}")
        if self.format == "torchscript":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self._module = torch.jit.load(path, map_location="cpu")
            for w in caught:  # torch.jit.load's deprecation; export already warned about TorchScript's
                logger.debug("torch.jit.load: %s", _first_line(w.message))
            self._session = None
        else:
            _require_onnx()
            import onnxruntime

            self._session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
            # The exporter drops inputs the graph does not read (ptr, for models that ignore it).
            self._inputs = [i.name for i in self._session.get_inputs()]

    def __call__(self, *inputs: Any) -> Tensor:
        tensors = batch_inputs(inputs[0]) if len(inputs) == 1 else tuple(inputs)
        if self._session is None:
            with torch.no_grad():
                return self._module(*tensors)
        feed = {name: t.cpu().numpy() for name, t in zip(INPUT_NAMES, tensors) if name in self._inputs}
        return torch.from_numpy(self._session.run([OUTPUT_NAME], feed)[0])

    def __repr__(self) -> str:
        return f"ExportedModel({self.path!r}, format={self.format!r})"


def load_exported(path: str, format: Optional[str] = None) -> ExportedModel:
    """Load a TorchScript or ONNX export written by :func:`export_model` (format from the suffix)."""
    return ExportedModel(path, format)


def _check_batches(graphs: Sequence[Data]) -> List[Batch]:
    """A trace example and check batches: a few graphs to trace, then all of them, then a single one."""
    graphs = list(graphs)
    trace = Batch.from_data_list(graphs[: min(4, len(graphs))])
    checks = [Batch.from_data_list(graphs), Batch.from_data_list(graphs[-1:])]
    return [trace] + checks


@torch.no_grad()
def export_model(model: nn.Module, out: str, format: Optional[str] = None, graphs: Optional[Sequence] = None,
                 feature_spec: Optional[FeatureSpec] = None, size_stats: Optional[GraphSizeStats] = None,
                 num_graphs: int = 64, tolerance: float = DEFAULT_TOLERANCE, seed: int = 0) -> ExportResult:
    """Export ``model`` (in eval mode, on CPU) to ``out`` and check it against PyTorch.

    Args:
        model: a graph classifier (dfkd zoo models export with a dynamic number of graphs).
        out: file to write; written atomically, and only when the check passes.
        format: ``torchscript`` or ``onnx`` (default: from ``out``'s suffix).
        graphs: graphs to check on (real or synthetic ``Data``); default: :func:`example_graphs` from
            ``feature_spec`` / ``size_stats``.
        num_graphs: at most this many graphs in the check batch.
        tolerance: largest allowed ``max |exported - PyTorch|`` over all outputs.

    Raises:
        ExportError: unknown format, missing ONNX packages, graphs that do not fit the model, a model the
            exporter cannot handle, or outputs that differ by more than ``tolerance``.
    """
    start = time.perf_counter()
    format = format_for(out, format)
    if tolerance <= 0:
        raise ExportError(f"tolerance must be > 0, got {tolerance}")
    if num_graphs < 1:
        raise ExportError(f"num_graphs must be >= 1, got {num_graphs}")
    if format == "onnx":
        _require_onnx()
    model = model.cpu().eval()
    config = getattr(model, "config", None)
    in_channels = getattr(config, "in_channels", None)
    if graphs is None:
        graphs = example_graphs(feature_spec, num_graphs, seed=seed, size_stats=size_stats, in_channels=in_channels)
        source = "random graphs of the model's input encoding"
    else:
        graphs = list(graphs)[:num_graphs]
        source = "given graphs"
    if not graphs:
        raise ExportError("no graphs to check the export on: give at least one graph")
    width = graphs[0].x.size(-1) if graphs[0].x is not None else None
    if in_channels is not None and width != in_channels:
        raise ExportError(f"the check graphs have {width} node features but the model expects {in_channels}: "
                          "check on the dataset the model was trained on")
    module = DeployableModel(model).eval()
    trace, *checks = _check_batches(graphs)
    example = batch_inputs(trace)

    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-export-", suffix=".onnx" if format == "onnx" else ".ts", dir=folder)
    os.close(fd)
    try:
        try:
            # Scatter kernels only: the dense path's block size is read from the example's values and
            # would be frozen into the exported graph.
            with use_propagation("sparse"):
                (_write_onnx if format == "onnx" else _write_torchscript)(module, example, tmp)
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(f"{format} export of {type(model).__name__} failed ({_root_cause(exc)}): the model "
                              "computes a size from tensor values, which export cannot follow (run with --debug "
                              "for the traceback)") from exc
        exported = ExportedModel(tmp, format)
        diff, classes = 0.0, 0
        frozen = ("the trace froze a size computed from tensor values (the number of graphs, the largest graph, "
                  "...), so the export only fits the example it was traced on; models that take num_graphs and "
                  "derive every other size from tensor shapes export correctly")
        for batch in checks:
            expected = module(*batch_inputs(batch))
            try:
                got = exported(*batch_inputs(batch))
            except Exception as exc:
                raise ExportError(f"the {format} export fails on a batch of {batch.num_graphs} graph(s) "
                                  f"({_root_cause(exc)}): {frozen}") from exc
            if got.shape != expected.shape:
                raise ExportError(f"the {format} export gives outputs of shape {tuple(got.shape)} instead of "
                                  f"{tuple(expected.shape)} on {batch.num_graphs} graph(s): {frozen}")
            diff = max(diff, float((got.float() - expected.float()).abs().max()) if got.numel() else 0.0)
            classes = expected.size(-1)
        if not diff <= tolerance:  # NaN fails too
            raise ExportError(f"the {format} export differs from PyTorch by up to {diff:.3g} (> tolerance "
                              f"{tolerance:g}) on {len(graphs)} graphs: not written; raise --tolerance only if "
                              "that is acceptable")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it a normal file's mode
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    seconds = time.perf_counter() - start
    logger.info("exported %s to %s (%s), max abs diff %.2e on %d graphs", type(model).__name__, out, format,
                diff, len(graphs))
    return ExportResult(path=out, format=format, max_abs_diff=diff, tolerance=tolerance, num_graphs=len(graphs),
                        source=source, num_classes=classes, seconds=seconds)


def export_checkpoint(checkpoint: Any, out: str, format: Optional[str] = None, graphs: Optional[Sequence] = None,
                      **kwargs: Any) -> ExportResult:
    """:func:`export_model` of the model a :class:`dfkd.Checkpoint` holds (its feature spec and size
    statistics make the default check graphs)."""
    return export_model(checkpoint.build_model(), out, format=format, graphs=graphs,
                        feature_spec=checkpoint.feature_spec, size_stats=checkpoint.size_stats, **kwargs)
