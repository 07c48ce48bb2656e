"""The type-prior fit stops the teacher at its first BatchNorm layer: same result as the full forward."""
import torch

import dfkd
from dfkd.generators.priors import estimate_type_prior
from dfkd.generators.structure import candidate_pairs, node_to_graph, sample_node_counts, undirected


def test_truncated_forward_gives_the_full_forward_result_with_fewer_layer_calls():
    torch.manual_seed(0)
    teacher = dfkd.build_model("gin-4-16", in_channels=5, out_channels=2).eval()
    first_bn = next(m for m in teacher.modules() if isinstance(m, torch.nn.BatchNorm1d))
    first_bn.running_mean.copy_(torch.randn(16) * 0.3)  # something to fit
    for p in teacher.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(0)
    counts = sample_node_counts(16, 8, 14, gen)
    pairs, owner = candidate_pairs(counts)
    edges = undirected(pairs[:, torch.rand(pairs.size(1), generator=gen) < 0.2])
    calls = []
    handle = teacher.head.register_forward_pre_hook(lambda module, args: calls.append(1)) \
        if hasattr(teacher, "head") else None
    fast, r_fast = estimate_type_prior(teacher, 5, edges, node_to_graph(counts), 16, steps=40)
    fast_calls = len(calls)
    full, r_full = estimate_type_prior(teacher, 5, edges, node_to_graph(counts), 16, steps=40, truncate=False)
    if handle is not None:
        handle.remove()
        assert fast_calls == 0 and len(calls) == 40  # the truncated fit never reaches the head
    assert torch.allclose(fast, full, atol=1e-6) and abs(r_fast - r_full) < 1e-6
