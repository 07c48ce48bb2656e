"""A teacher in train mode, with dropout active, or with BatchNorm that keeps no running statistics is
detected: switched to eval mode with a warning, warned about, and the BatchNorm-statistics prior says
why it is unavailable."""
import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dfkd
from dfkd.distill import DistillConfig, Distiller, SyntheticSetSource
from dfkd.generators import BernoulliGraphGenerator, PriorGraphGenerator, RandomGraphGenerator
from dfkd.losses import BatchNormStatsLoss
from dfkd.nn.teacher import batchnorm_without_stats, is_deterministic, prepare_teacher


@pytest.fixture(scope="module")
def ckpt(tiny_teacher_path):
    return dfkd.load_checkpoint(tiny_teacher_path)


def _no_running_stats(model):
    """The same model with every BatchNorm built as ``track_running_stats=False``."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.track_running_stats = False
            module.running_mean = module.running_var = module.num_batches_tracked = None
    return model


class _AlwaysDropout(nn.Module):
    """A teacher whose forward ignores eval(): functional dropout with training=True."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, edge_index, batch):
        return self.model(F.dropout(x, 0.5, training=True), edge_index, batch)


def _graphs(ckpt):
    return RandomGraphGenerator.from_checkpoint(ckpt).generate(16, seed=0, show_progress=False)


def test_teacher_in_train_mode_is_switched_to_eval_with_a_warning(ckpt, caplog):
    teacher = ckpt.build_model().train()
    with caplog.at_level(logging.WARNING, logger="dfkd"):
        distiller = Distiller(teacher, dfkd.build_model("gin-1-8", in_channels=7, out_channels=2),
                              SyntheticSetSource(_graphs(ckpt), 8), DistillConfig(epochs=1), show_progress=False)
    assert not distiller.teacher.training
    assert any("teacher was in train mode" in r.getMessage() for r in caplog.records)
    # Deterministic again: its dropout and BatchNorm now use eval behaviour.
    assert is_deterministic(distiller.teacher, 7, torch.device("cpu"))


def test_teacher_switched_to_train_mid_run_is_put_back(ckpt, caplog):
    graphs = _graphs(ckpt)
    teacher = ckpt.build_model()

    class Meddling(SyntheticSetSource):  # someone's code flips the teacher to train mode after epoch 1
        def batches(self, epoch, generator):
            yield from super().batches(epoch, generator)
            teacher.train()

    with caplog.at_level(logging.WARNING, logger="dfkd"):
        Distiller(teacher, dfkd.build_model("gin-1-8", in_channels=7, out_channels=2), Meddling(graphs, 8),
                  DistillConfig(epochs=2), show_progress=False).fit()
    assert sum("teacher was in train mode" in r.getMessage() for r in caplog.records) == 1


def test_module_teacher_in_train_mode_is_built_in_eval_mode(ckpt, caplog):
    module = ckpt.build_model().train()
    wrapped = dfkd.Checkpoint.from_module(module, feature_spec=ckpt.feature_spec, num_classes=2)
    with caplog.at_level(logging.WARNING, logger="dfkd"):
        model = wrapped.build_model()
    assert not model.training and any("train mode" in r.getMessage() for r in caplog.records)


def test_dropout_active_in_eval_mode_is_detected(ckpt, caplog):
    teacher = _AlwaysDropout(ckpt.build_model())
    assert is_deterministic(teacher.eval(), 7, torch.device("cpu")) is False
    state = torch.random.get_rng_state()
    with caplog.at_level(logging.WARNING, logger="dfkd"):
        RandomGraphGenerator(teacher, ckpt.feature_spec, 2)
    assert torch.equal(state, torch.random.get_rng_state())  # the probe leaves the random streams alone
    assert any("different outputs for the same graph" in r.getMessage() for r in caplog.records)


def test_healthy_teacher_gives_no_warning(ckpt, caplog):
    with caplog.at_level(logging.WARNING, logger="dfkd"):
        prepare_teacher(ckpt.build_model())
    assert not caplog.records


def test_batchnorm_without_running_stats_is_warned_and_explained(ckpt, caplog):
    teacher = _no_running_stats(ckpt.build_model())
    assert batchnorm_without_stats(teacher)
    bn = BatchNormStatsLoss(teacher)
    assert not bn.available and "track_running_stats=False" in bn.reason
    with caplog.at_level(logging.WARNING, logger="dfkd"):
        graphs = BernoulliGraphGenerator(teacher, ckpt.feature_spec, 2, iterations=2).generate(4, show_progress=False)
    messages = [r.getMessage() for r in caplog.records]
    assert any("keep no running statistics" in m and "depends on its batch" in m for m in messages)
    assert any(m.startswith("BatchNorm prior disabled: the teacher's BatchNorm layers keep no running statistics")
               for m in messages)
    assert graphs.meta["bn_prior"] is False and "track_running_stats=False" in graphs.meta["bn_prior_reason"]
    # The prior generator cannot invert node types from absent statistics either, and says so.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dfkd"):
        PriorGraphGenerator(_no_running_stats(ckpt.build_model()), ckpt.feature_spec, 2).build(0)
    assert any("no BatchNorm running statistics" in r.getMessage() for r in caplog.records)


def test_teacher_without_batchnorm_explains_the_prior_is_unavailable(ckpt):
    teacher = dfkd.build_model("gin-2-8", in_channels=7, out_channels=2, batch_norm=False)
    bn = BatchNormStatsLoss(teacher)
    assert not bn.available and bn.reason == "the teacher has no BatchNorm layers, so there are no statistics to match"
