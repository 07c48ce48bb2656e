"""Foreign PyTorch Geometric classifiers recognised as the zoo model they compute.

A teacher from other code (``--teacher-module``, :meth:`dfkd.Checkpoint.from_module`) is a black box to dfkd:
it can be called, not saved in the safe format, and a student cannot start from its weights
(:mod:`dfkd.distill.inherit`). Many such teachers are plain stacks of PyG layers that a zoo model computes
exactly: ``GINConv(Sequential(Linear, [BatchNorm1d], ReLU, Linear))``, mean-aggregating ``SAGEConv`` or
symmetric-normalised ``GCNConv`` layers (the zoo's GCN with ``bias_after_propagation``), each followed by ``[BatchNorm1d] → ReLU``, a ``sum``/``mean``/``max`` readout of the last layer
(``jk="last"``) or of the input and every layer (``jk="cat"``), and one ``Linear`` head.
:func:`zoo_equivalent` reads the candidate configurations off the module's layers and weight shapes, copies
the weights into each, and keeps the one whose logits match the module's on random probe graphs: the module's
code is never parsed, so a forward that wires the same layers differently simply does not match.
"""
from __future__ import annotations

import itertools
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch_geometric.nn import GCNConv as PygGCNConv
from torch_geometric.nn import GINConv as PygGINConv
from torch_geometric.nn import Linear as PygLinear
from torch_geometric.nn import MessagePassing
from torch_geometric.nn import SAGEConv as PygSAGEConv

from dfkd.config import ModelConfig
from dfkd.nn.models import GraphClassifier
from dfkd.nn.registry import build_model
from dfkd.nn.utils import call_model, eval_mode

POOLS = ("sum", "mean", "max")
ARCHS = {PygGINConv: "gin", PygSAGEConv: "sage", PygGCNConv: "gcn"}  # the PyG layers a zoo model computes


def _gin_mlp(conv: nn.Module) -> Optional[Tuple[nn.Linear, Optional[nn.BatchNorm1d], nn.Linear]]:
    """``(first linear, inner BatchNorm or None, second linear)`` of a GIN layer's MLP, or ``None`` when it is
    not ``Sequential(Linear, [BatchNorm1d], ReLU, Linear)``."""
    mlp = getattr(conv, "nn", None)
    kinds = [type(m) for m in mlp] if isinstance(mlp, nn.Sequential) else []
    if kinds == [nn.Linear, nn.ReLU, nn.Linear]:
        return mlp[0], None, mlp[2]
    if kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]:
        return mlp[0], mlp[1], mlp[3]
    return None


def _candidates(module: nn.Module, in_channels: int, out_channels: int
                ) -> Tuple[List[Tuple[ModelConfig, Dict[str, Tensor]]], Optional[str]]:
    """Zoo configurations (and their state_dicts) ``module`` may compute, or ``([], why not)``."""
    convs = [m for m in module.modules() if isinstance(m, MessagePassing)]
    if not convs:
        return [], "it has no PyTorch Geometric message-passing layers"
    kind = type(convs[0])
    if kind not in ARCHS or any(type(c) is not kind for c in convs):
        return [], f"its layers ({', '.join(sorted({type(c).__name__ for c in convs}))}) have no zoo equivalent"
    if kind is PygSAGEConv and any(c.aggr != "mean" or c.normalize or not c.root_weight or c.project for c in convs):
        return [], "its SAGEConv layers are not plain mean aggregation with a root weight"
    if kind is PygGCNConv and any(c.improved or not c.add_self_loops or not c.normalize for c in convs):
        return [], "its GCNConv layers are not symmetric-normalised with unit self-loops (improved=False)"
    mlps = [_gin_mlp(c) for c in convs] if kind is PygGINConv else []
    if any(m is None for m in mlps):
        return [], "its GINConv MLPs are not Linear, [BatchNorm1d], ReLU, Linear"
    inside = {id(p) for c in convs for p in c.parameters()}
    outside = [m for m in module.modules() if not any(True for _ in m.children())
               and any(id(p) not in inside for p in m.parameters(recurse=False))]
    norms = [m for m in outside if isinstance(m, nn.BatchNorm1d)]
    heads = [m for m in outside if isinstance(m, (nn.Linear, PygLinear))]
    if len(heads) != 1 or len(norms) + 1 != len(outside) or len(norms) not in (0, len(convs)):
        return [], ("besides its message-passing layers it holds other than one BatchNorm1d per layer and one "
                    "Linear head")
    if mlps and any((m[1] is None) != (not norms) for m in mlps):
        return [], "its GIN layers normalise inside their MLPs but not after them (or the other way round)"
    lins = [m[0] for m in mlps] if mlps else [c.lin_l if kind is PygSAGEConv else c.lin for c in convs]
    widths = [tuple(lin.weight.shape) for lin in lins]  # (out, in)
    hidden, layers, head = widths[0][0], len(convs), heads[0]
    if widths[0][1] != in_channels or any(w != (hidden, hidden) for w in widths[1:]) \
            or head.weight.size(0) != out_channels:
        return [], "its layer widths are not in_channels, then one hidden width throughout"
    jks = [jk for jk, width in (("last", hidden), ("cat", in_channels + layers * hidden))
           if head.weight.size(1) == width]
    if not jks:
        return [], f"its head reads {head.weight.size(1)} channels, neither the last layer nor every layer"
    state: Dict[str, Tensor] = {}
    for i, conv in enumerate(convs):
        if mlps:
            first, inner, second = mlps[i]
            state.update(_linear(f"convs.{i}.mlp.0.", first))
            state.update(_linear(f"convs.{i}.mlp.3.", second))
            if inner is not None:
                state.update(_prefixed(f"convs.{i}.mlp.1.", inner))
            state[f"convs.{i}.eps"] = conv.eps.detach().reshape(1)
        elif kind is PygGCNConv:  # PyG: lin without bias, the bias added after propagation
            bias = conv.bias if conv.bias is not None else conv.lin.weight.new_zeros(hidden)
            state.update({f"convs.{i}.lin.weight": conv.lin.weight.detach(), f"convs.{i}.lin.bias": bias.detach()})
        else:  # PyG: lin_l (bias) reads the neighbours' mean, lin_r (no bias) the node itself
            state[f"convs.{i}.lin_self.weight"] = conv.lin_r.weight.detach()
            state[f"convs.{i}.lin_self.bias"] = _linear("", conv.lin_l)["bias"]
            state[f"convs.{i}.lin_neigh.weight"] = conv.lin_l.weight.detach()
        if norms:
            state.update(_prefixed(f"norms.{i}.", norms[i]))
    state.update(_linear("head.", head))
    arch = ARCHS[kind]
    configs = [ModelConfig(arch=arch, in_channels=in_channels, out_channels=out_channels, num_layers=layers,
                           hidden=hidden, batch_norm=bool(norms), pool=pool, jk=jk, residual=residual,
                           bias_after_propagation=arch == "gcn")
               for jk, pool, residual in itertools.product(jks, POOLS, (False, True))]
    return [(config, state) for config in configs], None


def _prefixed(prefix: str, module: nn.Module) -> Dict[str, Tensor]:
    return {prefix + k: v.detach() for k, v in module.state_dict().items()}


def _linear(prefix: str, lin: nn.Module) -> Dict[str, Tensor]:
    """A linear layer's (torch's or PyG's) weight and bias (zeros where it has none: the zoo's all have one)."""
    bias = lin.bias.detach() if lin.bias is not None else lin.weight.new_zeros(lin.weight.size(0))
    return {prefix + "weight": lin.weight.detach(), prefix + "bias": bias}


def _probe_graphs(in_channels: int, seed: int = 0) -> Tuple[Tensor, Tensor, Tensor]:
    """``(x [N, F], edge_index [2, E], batch [N])``: eight random undirected graphs of 2-12 nodes with
    Gaussian features, some nodes isolated, as a distinguishing input (not a realistic one)."""
    gen = torch.Generator().manual_seed(seed)
    xs, edges, batch, offset = [], [], [], 0
    for g in range(8):
        n = int(torch.randint(2, 13, (1,), generator=gen))
        adj = torch.triu(torch.rand(n, n, generator=gen) < 0.35, diagonal=1)
        src, dst = adj.nonzero().t()
        edges.append(torch.stack([torch.cat([src, dst]), torch.cat([dst, src])]) + offset)
        xs.append(torch.randn(n, in_channels, generator=gen))
        batch.append(torch.full((n,), g))
        offset += n
    return torch.cat(xs), torch.cat(edges, 1), torch.cat(batch)


@torch.no_grad()
def zoo_equivalent(module: nn.Module, in_channels: int, out_channels: int
                   ) -> Tuple[Optional[GraphClassifier], str]:
    """``(zoo model, description)`` when ``module`` computes exactly what a zoo model does (module docstring:
    its logits and the zoo model's agree on random probe graphs, in eval mode), else ``(None, why not)``.
    The zoo model holds copies of the module's weights, in eval mode; the module is left as it was."""
    candidates, reason = _candidates(module, in_channels, out_channels)
    if reason is not None:
        return None, reason
    x, edge_index, batch = _probe_graphs(in_channels)
    device = next(module.parameters()).device
    x, edge_index, batch = x.to(device), edge_index.to(device), batch.to(device)
    with eval_mode(module):
        try:
            expected = call_model(module, x, edge_index, batch).float()
        except Exception as exc:  # noqa: BLE001 - whatever its forward wants, it is not a zoo model's call
            return None, f"it cannot be called as model(x, edge_index, batch) ({type(exc).__name__})"
    if expected.shape != (int(batch.max()) + 1, out_channels):
        return None, f"it returns {tuple(expected.shape)}, not one row of logits per graph"
    tolerance = 1e-4 * max(1.0, float(expected.abs().max()))
    for config, state in candidates:
        model = build_model(config).to(device)
        try:
            model.load_state_dict(state)
        except RuntimeError:  # e.g. BatchNorm without running statistics: not a zoo layer
            return None, "its weights do not fill a zoo model's (BatchNorm without running statistics?)"
        model.eval()
        if torch.allclose(call_model(model, x, edge_index, batch), expected, rtol=0, atol=tolerance):
            return model, (f"{config.short_name} (pool={config.pool}, jk={config.jk}, "
                           f"{'BatchNorm' if config.batch_norm else 'no normalisation'}"
                           f"{', residual' if config.residual else ''})")
    return None, "no zoo model of its layers and widths gives its outputs on probe graphs"
