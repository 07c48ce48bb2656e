import pytest
import torch
from torch_geometric.data import Batch, Data

import dfkd
from dfkd.evaluate import predict
from dfkd.nn import call_model, forward_batch, get_precision, set_precision, use_precision
from dfkd.nn.precision import check_precision, to_float32
from dfkd.ops import scatter, use_propagation


def _batch(graphs=16, nodes=12, edges=30, features=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    data = [Data(x=torch.randn(nodes, features, generator=gen),
                 edge_index=torch.randint(0, nodes, (2, edges), generator=gen)) for _ in range(graphs)]
    return Batch.from_data_list(data)


def _model(arch="gin-3-32", seed=0):
    torch.manual_seed(seed)
    return dfkd.build_model(arch, in_channels=7, out_channels=3).eval()


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("arch", ["gin-3-32", "gcn-3-32", "sage-3-32"])
def test_low_precision_forward_is_float32_and_close(precision, arch):
    model, batch = _model(arch), _batch()
    reference = forward_batch(model, batch, return_embeddings=True)
    with use_precision(precision):
        out = forward_batch(model, batch, return_embeddings=True)
    tensors = [out.logits, out.graph_embedding, *out.node_embeddings]
    assert all(t.dtype == torch.float32 for t in tensors)  # losses downstream work in float32
    scale = reference.logits.abs().max()
    tolerance = 0.05 if precision == "bf16" else 0.01  # 8 vs 11 significant bits
    assert (out.logits - reference.logits).abs().max() <= tolerance * scale
    assert not torch.equal(out.logits, reference.logits)  # it really ran in low precision


@pytest.mark.parametrize("mode", ["sparse", "dense"])
def test_low_precision_gradients_are_float32_and_close(mode):
    model, batch = _model(), _batch(nodes=8, edges=40)
    model.train()
    grads = {}
    for precision in ("fp32", "bf16"):
        model.zero_grad()
        torch.manual_seed(1)  # the same dropout mask
        with use_precision(precision), use_propagation(mode):
            forward_batch(model, batch).pow(2).mean().backward()
        grads[precision] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    assert grads["bf16"].dtype == torch.float32
    cosine = torch.nn.functional.cosine_similarity(grads["bf16"], grads["fp32"], dim=0)
    assert cosine > 0.99


def test_half_precision_sums_accumulate_in_float32():
    # bfloat16 holds 8 significant bits: a bfloat16 running sum of ones sticks at 256.
    ones = torch.ones(1000, 1, dtype=torch.bfloat16)
    index = torch.zeros(1000, dtype=torch.long)
    total = scatter(ones, index, 1, "sum")
    assert total.dtype == torch.float32 and total.item() == 1000.0
    assert scatter(ones, index, 1, "mean").item() == 1.0
    assert scatter(ones, index, 1, "max").dtype == torch.bfloat16  # exact in any dtype: left as is


def test_use_precision_restores_and_bad_names_are_refused():
    assert get_precision() == "fp32"
    with use_precision("bf16"):
        assert get_precision() == "bf16"
        with use_precision("fp16"):
            assert get_precision() == "fp16"
        assert get_precision() == "bf16"
    assert get_precision() == "fp32"
    with pytest.raises(ValueError, match="unknown precision 'fp8': choose fp32, bf16, fp16"):
        set_precision("fp8")
    with pytest.raises(ValueError, match="unknown precision"):
        dfkd.DistillConfig(precision="half")
    with pytest.raises(ValueError, match="no 'meta' backend: use --precision fp32"):
        check_precision("bf16", "meta")
    check_precision("fp32", "meta")  # float32 needs no autocast


def test_a_gpu_without_bfloat16_is_refused_with_the_fix(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(ValueError, match="no bfloat16 support: use --precision fp16"):
        check_precision("bf16", "cuda")
    check_precision("fp16", "cuda")  # autocast has a CUDA backend whether or not a GPU is present


def test_evaluation_is_float32_whatever_the_global_precision():
    model = _model()
    graphs = _batch(graphs=6).to_data_list()
    reference = predict(model, graphs)
    with use_precision("bf16"):
        assert torch.equal(predict(model, graphs), reference)


def test_other_dtypes_are_left_alone():
    double = torch.ones(2, dtype=torch.float64)
    assert to_float32(double) is double
    model = _model().double()
    batch = _batch(graphs=2)
    with use_precision("bf16"):  # autocast lowers float32 only; a float64 model's output is not narrowed
        out = call_model(model, batch.x.double(), batch.edge_index, batch.batch, 2)
    assert out.dtype == torch.float64
