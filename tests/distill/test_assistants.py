import torch

import dfkd
from dfkd.distill.sources import OnlineSource, SyntheticSetSource
from dfkd.generators import BernoulliGraphGenerator, PriorGraphGenerator


def test_relabelled_sources_leave_labelling_to_the_distiller(tiny_teacher):
    gen = torch.Generator().manual_seed(0)
    online = PriorGraphGenerator.from_checkpoint(tiny_teacher).build(0)
    kept = next(iter(OnlineSource(online, 8, batch_size=8).batches(0, gen)))
    dropped = next(iter(OnlineSource(online, 8, batch_size=8, relabel=True).batches(0, gen)))
    assert "teacher_logits" in kept and "teacher_logits" not in dropped
    graphs = BernoulliGraphGenerator.from_checkpoint(tiny_teacher, iterations=2).generate(8, show_progress=False)
    batch = next(iter(SyntheticSetSource(graphs, 8, relabel=True).batches(0, gen)))
    assert "teacher_logits" not in batch and batch.num_graphs == 8


def test_teacher_assistant_chain(tiny_teacher, mutag, tmp_path):
    config = dfkd.DistillConfig(epochs=3, seed=0, checkpoint_every=1)
    out = str(tmp_path / "student.pt")
    result = dfkd.distill_student(tiny_teacher, "gin-2-8", generator="prior", num_graphs=32, config=config,
                                  eval_graphs=list(mutag)[:40], out=out, assistants=["gin-2-16"], show_progress=False)
    stages = result.report.extra["assistants"]
    assert stages[0]["assistant"] == "gin-2-16" and 0 <= stages[0]["accuracy"] <= 1
    assert (tmp_path / "student.pt.run" / "assistant-1" / "distill_state.pt").exists()
    # The final figures compare the student with the original teacher, not with the assistant.
    teacher_acc = dfkd.evaluate(tiny_teacher.build_model(), list(mutag)[:40], measure_latency=False).accuracy
    assert result.report.final["teacher_accuracy"] == teacher_acc
    assert result.report.teacher_parameters == dfkd.nn.count_parameters(tiny_teacher.build_model())
    assert result.checkpoint.provenance["assistants"] == ["gin-2-16"]
    # Resuming a finished chain retrains nothing and gives the same student.
    again = dfkd.distill_student(tiny_teacher, "gin-2-8", generator="prior", num_graphs=32, config=config, out=out,
                                 assistants=["gin-2-16"], resume=True, show_progress=False)
    a, b = result.student.state_dict(), again.student.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
