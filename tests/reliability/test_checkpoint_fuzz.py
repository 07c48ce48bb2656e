"""Checkpoint loading under a seeded fuzz corpus (``corpus.py``): truncated files, random bytes, flipped
bits, wrong keys, types and shapes, pickles carrying code, huge declared sizes, other files.

Every case is either refused with a one-line error naming the file or (for mutations that leave a valid
checkpoint) accepted with a model that runs; a pickled payload never runs without ``trust=True``.
"""
import os
import time

import pytest
import torch

from dfkd import CheckpointError, load_checkpoint
from dfkd.checkpoint import safe_torch_load
from dfkd.cli import main

PER_KIND = 12
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol")
# Kinds no mutation of which can leave a usable checkpoint: all must be refused.
ALWAYS_REFUSED = {"truncated", "random_bytes", "wrong_shapes", "code_pickle", "non_dict", "other_files",
                  "non_finite"}


@pytest.mark.parametrize("kind", ["truncated", "random_bytes", "bit_flips", "wrong_keys", "wrong_types",
                                  "wrong_shapes", "code_pickle", "huge_sizes", "non_dict", "other_files",
                                  "non_finite"])
def test_every_fuzz_case_is_refused_in_one_line_or_valid(corpus, tmp_path, kind):
    assert kind in corpus.KINDS
    outcomes = []
    for case in corpus.make_cases(kind, PER_KIND, str(tmp_path), seed=0):
        start = time.perf_counter()
        outcomes.append(corpus.judge(case))
        # Huge declared sizes are refused before any allocation, not after minutes of swapping.
        assert time.perf_counter() - start < 10, case.name
    lost = [(o.case.name, o.detail) for o in outcomes if o.verdict == "lost"]
    assert not lost, lost
    refused = sum(o.verdict == "refused" for o in outcomes)
    if kind in ALWAYS_REFUSED:
        assert refused == PER_KIND, [(o.case.name, o.detail) for o in outcomes if o.verdict != "refused"]
    else:
        assert refused >= 1
    for o in outcomes:
        if o.verdict == "refused":
            assert "\n" not in o.detail and o.case.path in o.detail


def test_corpus_is_reproducible(corpus, tmp_path):
    a = corpus.make_cases("bit_flips", 4, str(tmp_path / "a"), seed=7)
    b = corpus.make_cases("bit_flips", 4, str(tmp_path / "b"), seed=7)
    assert [open(x.path, "rb").read() for x in a] == [open(y.path, "rb").read() for y in b]


def test_huge_model_config_is_refused_before_allocating(corpus, tmp_path):
    base = corpus.base_checkpoint()
    for field, value in [("in_channels", 10 ** 9), ("hidden", 10 ** 9), ("out_channels", 10 ** 12),
                         ("num_layers", 10 ** 6)]:
        # No feature spec or labels: past the metadata consistency checks, straight to the weights check.
        obj = {**base, "model_config": {**base["model_config"], field: value}, "feature_spec": None,
               "label_values": []}
        path = str(tmp_path / f"{field}.pt")
        torch.save(obj, path)
        start = time.perf_counter()
        with pytest.raises(CheckpointError, match="do not fit") as info:
            load_checkpoint(path).build_model()
        assert time.perf_counter() - start < 5 and "\n" not in str(info.value)


@pytest.mark.parametrize("how", ["open", "os.system", "exec", "eval", "subprocess", "torch.save"])
def test_code_pickles_never_run_without_trust(corpus, tmp_path, how):
    marker = tmp_path / "pwned"
    for container in ("zip", "legacy"):
        path = str(tmp_path / f"evil-{container}.pt")
        torch.save({**corpus.base_checkpoint(), "payload": corpus._Payload(how, str(marker))}, path,
                   _use_new_zipfile_serialization=container == "zip")
        with pytest.raises(CheckpointError, match="--trust-checkpoint"):
            load_checkpoint(path)
        assert not marker.exists()


def test_the_payload_is_live_with_trust(corpus, tmp_path):
    # The control: the same file with the explicit trust flag does run its code, so the test above
    # proves refusal, not a dud payload.
    marker = tmp_path / "ran"
    path = str(tmp_path / "evil.pt")
    torch.save({"payload": corpus._Payload("open", str(marker))}, path)
    with pytest.warns(UserWarning, match="trust=True"):
        safe_torch_load(path, trust=True)
    assert marker.exists()


def test_cli_refuses_a_code_pickle_in_one_line(corpus, tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = str(tmp_path / "teacher.pt")
    torch.save({**corpus.base_checkpoint(), "payload": corpus._Payload("os.system", str(marker))}, path)
    for argv in (["evaluate", "--model", path, "--dataset", "MUTAG"],
                 ["distill", "--teacher", path, "--out", str(tmp_path / "s.pt"), "--quiet"],
                 ["export", "--model", path, "--out", str(tmp_path / "m.ts")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "--trust-checkpoint" in err and "\n" not in err
    assert not marker.exists() and not os.path.exists(tmp_path / "s.pt")


def test_damaged_synthetic_set_is_one_line(tmp_path):
    from dfkd.generators import SyntheticGraphSet

    path = str(tmp_path / "synthetic.pt")
    torch.save({"format": "dfkd.synthetic", "format_version": 1, "x": torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError, match="damaged dfkd synthetic graph set") as info:
        SyntheticGraphSet.load(path)
    assert "\n" not in str(info.value)


def test_huge_size_statistics_are_refused_before_generating(corpus, tmp_path, capsys):
    # The one huge declared size a checkpoint may load with (statistics are not weights): the generators
    # refuse it before allocating anything, in one line.
    base = corpus.base_checkpoint()
    path = str(tmp_path / "stats.pt")
    torch.save({**base, "size_stats": {**base["size_stats"], "max_nodes": 10 ** 12, "mean_nodes": 5e11}}, path)
    assert main(["generate", "--teacher", path, "--generator", "random", "--out", str(tmp_path / "g.pt"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "beyond 1,000,000 nodes per graph" in err and "--nodes MIN:MAX" in err and "\n" not in err


@pytest.mark.parametrize("shares, message", [([0.5, 0.5], "type_frequencies has 2 entries for feature_spec.dim"),
                                             ([-1.0] * 7, "must be non-negative"),
                                             ("CCO", "expected Optional[List[float]]")])
def test_bad_node_type_shares_are_a_damaged_checkpoint_in_one_line(corpus, tmp_path, shares, message):
    base = corpus.base_checkpoint()
    path = str(tmp_path / "types.pt")
    torch.save({**base, "size_stats": {**base["size_stats"], "type_frequencies": shares}}, path)
    with pytest.raises(CheckpointError, match="damaged dfkd checkpoint") as info:
        load_checkpoint(path)
    assert message in str(info.value) and "\n" not in str(info.value)
    good = [0.7] + [0.05] * 6
    torch.save({**base, "size_stats": {**base["size_stats"], "type_frequencies": good}}, path)
    assert load_checkpoint(path).size_stats.type_frequencies == good
