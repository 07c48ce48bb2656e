"""A seeded fuzz corpus of hostile and broken checkpoint files, and the judge of how dfkd treats them.

Shared by ``tests/reliability/test_checkpoint_fuzz.py`` and ``benchmarks/reliability.py``. Every case is
a file written into a folder; :func:`judge` loads it the way the CLI does (``load_checkpoint`` then
``build_model`` and one forward pass) and sorts the outcome:

* ``refused``: a one-line :class:`dfkd.CheckpointError` (or ``ValueError``) naming the file;
* ``accepted``: the mutation left a valid checkpoint (e.g. an unknown extra key, a changed weight value)
  and the rebuilt model gives finite outputs;
* ``lost``: anything else: another exception type, a multi-line or anonymous message, a model that loads
  but cannot run, or a pickled payload that ran (its marker file appeared).
"""
from __future__ import annotations

import collections
import copy
import dataclasses
import io
import os
import pickle
import random
import struct
import subprocess
import zipfile
from typing import Any, Callable, Dict, List, Optional

import torch

import dfkd
from dfkd.checkpoint import CheckpointError

KINDS = ("truncated", "random_bytes", "bit_flips", "wrong_keys", "wrong_types", "wrong_shapes", "code_pickle",
         "huge_sizes", "non_dict", "other_files", "non_finite")


@dataclasses.dataclass
class Case:
    kind: str
    name: str
    path: str
    marker: Optional[str] = None  # a file the payload would create if it ever ran


@dataclasses.dataclass
class Outcome:
    case: Case
    verdict: str  # refused | accepted | lost
    detail: str


# --- the valid checkpoint every mutation starts from --------------------------------------------------
def base_checkpoint(arch: str = "gin-2-8", in_channels: int = 7, classes: int = 2) -> Dict[str, Any]:
    """A small, valid dfkd checkpoint dict (seeded; no training needed)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = dfkd.build_model(arch, in_channels=in_channels, out_channels=classes)
    spec = dfkd.FeatureSpec(dim=in_channels, encoding="one_hot", categories=list(range(in_channels)))
    stats = dfkd.GraphSizeStats(min_nodes=10, max_nodes=28, mean_nodes=17.9, mean_degree=2.2, degree_var=0.55)
    ckpt = dfkd.Checkpoint.from_model(model, feature_spec=spec, label_values=list(range(classes)), size_stats=stats,
                                      provenance={"dataset": "MUTAG", "seed": 0})
    return ckpt.to_dict()


def _save(obj: Any, path: str) -> str:
    torch.save(obj, path)
    return path


def _valid_bytes(base: Dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(base, buf)
    return buf.getvalue()


# --- payloads that would run code if unpickled -------------------------------------------------------
class _Payload:
    """Unpickling calls ``func(*args)``; every variant creates ``marker``."""

    def __init__(self, how: str, marker: str):
        self.how, self.marker = how, marker

    def __reduce__(self):
        m = self.marker
        if self.how == "open":
            return (open, (m, "w"))
        if self.how == "os.system":
            return (os.system, (f"touch '{m}'",))
        if self.how == "exec":
            return (exec, (f"open({m!r}, 'w').close()",))
        if self.how == "eval":
            return (eval, (f"open({m!r}, 'w').close()",))
        if self.how == "subprocess":
            return (subprocess.call, (["touch", m],))
        if self.how == "torch.save":  # an allow-listed-looking module, still code
            return (torch.save, ({}, m))
        raise ValueError(self.how)


PAYLOADS = ("open", "os.system", "exec", "eval", "subprocess", "torch.save")


class _HugeTensor:
    """Unpickles as a tensor declaring ``size`` elements over a 4-element storage."""

    def __init__(self, size):
        self.size = size

    def __reduce_ex__(self, protocol):
        storage = torch.zeros(4).untyped_storage()
        return (torch._utils._rebuild_tensor_v2,
                (storage, 0, self.size, tuple(1 for _ in self.size), False, collections.OrderedDict()))


# --- mutations -----------------------------------------------------------------------------------------
_JUNK = [None, True, False, -1, 0, 3, 10 ** 30, 1.5, float("nan"), float("inf"), "", "gin", "x" * 300, b"\x00\xff",
         [], [1, 2], {}, {"a": 1}, (1, 2), torch.tensor(1.0), torch.zeros(3, dtype=torch.int64),
         torch.zeros(2, 2), {"format": "dfkd.checkpoint"}, [[[]]], -0.0]


def _paths(obj: Dict[str, Any]) -> List[tuple]:
    """Every (container, key) pair of the checkpoint dict, nested one level."""
    out = [(obj, k) for k in obj]
    for k in ("model_config", "feature_spec", "size_stats", "state_dict", "provenance"):
        if isinstance(obj.get(k), dict):
            out += [(obj[k], kk) for kk in obj[k]]
    if isinstance(obj.get("label_values"), list):
        out += [(obj["label_values"], i) for i in range(len(obj["label_values"]))]
    return out


def _wrong_keys(base: Dict[str, Any], rng: random.Random) -> tuple:
    obj = copy.deepcopy(base)
    op = rng.choice(["delete", "rename", "add", "delete_nested", "rename_nested", "add_nested"])
    if op in ("delete", "rename", "add"):
        target = obj
    else:
        target = obj[rng.choice(["model_config", "feature_spec", "size_stats", "state_dict"])]
    key = rng.choice(sorted(target))
    if op.startswith("delete"):
        del target[key]
    elif op.startswith("rename"):
        target[key + rng.choice(["_", "s", ".old"])] = target.pop(key)
    else:
        target[rng.choice(["extra", "hidden_dim", "weights", "module.x"])] = rng.choice(_JUNK)
    return obj, f"{op} {key}"


def _wrong_types(base: Dict[str, Any], rng: random.Random) -> tuple:
    obj = copy.deepcopy(base)
    container, key = rng.choice(_paths(obj))
    value = rng.choice(_JUNK)
    container[key] = copy.deepcopy(value)
    return obj, f"{key} = {value!r:.40}"


def _wrong_shapes(base: Dict[str, Any], rng: random.Random) -> tuple:
    obj = copy.deepcopy(base)
    op = rng.choice(["resize", "add_dim", "drop_dim", "transpose", "config", "arch", "foreign"])
    state, config = obj["state_dict"], obj["model_config"]
    key = rng.choice(sorted(k for k, v in state.items() if v.dim() >= 1))
    t = state[key]
    if op == "resize":
        shape = list(t.shape)
        i = rng.randrange(len(shape))
        shape[i] = max(0, shape[i] + rng.choice([-1, 1, 7]))
        state[key] = torch.zeros(shape)
    elif op == "add_dim":
        state[key] = t.unsqueeze(0)
    elif op == "drop_dim":
        state[key] = t.reshape(-1)[:1].reshape(()) if t.dim() == 1 else t.reshape(-1)
    elif op == "transpose":
        state[key] = t.t().contiguous() if t.dim() == 2 and t.size(0) != t.size(1) else torch.zeros(t.numel() + 1)
    elif op == "config":
        field = rng.choice(["hidden", "in_channels", "out_channels", "num_layers"])
        config[field] = config[field] + rng.choice([1, 2, -1]) if config[field] > 1 else config[field] + 1
        key = f"model_config.{field}"
    elif op == "arch":
        config["arch"] = rng.choice(["gcn", "sage", "mlp"])
        key = "model_config.arch"
    else:  # weights of another architecture under this config
        with torch.random.fork_rng(devices=[]):
            other = dfkd.build_model(rng.choice(["gcn-2-8", "gin-3-8", "gin-2-16"]), in_channels=7, out_channels=2)
        obj["state_dict"] = other.state_dict()
        key = "state_dict"
    return obj, f"{op} {key}"


def _non_finite(base: Dict[str, Any], rng: random.Random) -> tuple:
    obj = copy.deepcopy(base)
    key = rng.choice(sorted(k for k, v in obj["state_dict"].items() if v.is_floating_point() and v.numel()))
    t = obj["state_dict"][key].clone()
    t.view(-1)[rng.randrange(t.numel())] = rng.choice([float("nan"), float("inf"), float("-inf")])
    obj["state_dict"][key] = t
    return obj, key


def _huge(base: Dict[str, Any], rng: random.Random, folder: str, name: str) -> tuple:
    """A config, statistics or tensor declaring an enormous size; or a zip record declaring one."""
    obj = copy.deepcopy(base)
    op = rng.choice(["hidden", "num_layers", "in_channels", "out_channels", "feature_dim", "max_nodes",
                     "tensor", "zip_record"])
    path = os.path.join(folder, name)
    if op in ("hidden", "num_layers", "in_channels", "out_channels"):
        obj["model_config"][op] = rng.choice({"hidden": [10 ** 9, 2 ** 31, 10 ** 6],
                                              "num_layers": [10 ** 6, 10 ** 9, 5000]}.get(op, [10 ** 9, 10 ** 12]))
    elif op == "feature_dim":
        obj["feature_spec"]["dim"] = 10 ** 9
    elif op == "max_nodes":
        obj["size_stats"].update(max_nodes=10 ** 12, mean_nodes=5e11)
    elif op == "tensor":
        key = rng.choice(sorted(obj["state_dict"]))
        obj["state_dict"][key] = _HugeTensor(rng.choice([(10 ** 12,), (10 ** 6, 10 ** 6), (2 ** 62,)]))
    else:
        data = bytearray(_valid_bytes(obj))
        open(path, "wb").write(_patch_zip_sizes(data, rng.choice([0x7FFFFFFF, 0xFFFFFFF0, 0x10000000])))
        return path, op
    return _save(obj, path), op


def _patch_zip_sizes(buf: bytearray, size: int) -> bytes:
    """Declare ``size`` bytes for every storage record (central directory and local headers)."""
    i = 0
    while True:
        i = buf.find(b"PK\x01\x02", i)
        if i < 0:
            return bytes(buf)
        name_len = struct.unpack_from("<H", buf, i + 28)[0]
        name = bytes(buf[i + 46:i + 46 + name_len])
        if b"/data/" in name:
            struct.pack_into("<II", buf, i + 20, size, size)
            offset = struct.unpack_from("<I", buf, i + 42)[0]
            if buf[offset:offset + 4] == b"PK\x03\x04":
                struct.pack_into("<II", buf, offset + 18, size, size)
        i += 4


def _code_pickle(base: Dict[str, Any], rng: random.Random, folder: str, name: str) -> tuple:
    marker = os.path.join(folder, f"{name}.ran")
    payload = _Payload(rng.choice(PAYLOADS), marker)
    obj = copy.deepcopy(base)
    where = rng.choice(["top", "model_config", "state_dict", "label_values", "provenance", "whole"])
    if where == "top":
        obj["payload"] = payload
    elif where == "label_values":
        obj["label_values"][0] = payload
    elif where == "whole":
        obj = payload
    else:
        obj[where][rng.choice(sorted(obj[where]))] = payload
    container = rng.choice(["zip", "legacy", "raw"])
    path = os.path.join(folder, name)
    if container == "zip":
        torch.save(obj, path)
    elif container == "legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        with open(path, "wb") as handle:
            pickle.dump(obj, handle, protocol=rng.choice([0, 2, 4, 5]))
    return path, f"{payload.how} in {where} ({container})", marker


def _non_dict(base: Dict[str, Any], rng: random.Random) -> tuple:
    choices: List[Callable[[], Any]] = [
        lambda: list(base["state_dict"].values()), lambda: tuple(base.items()), lambda: torch.zeros(3, 3),
        lambda: 42, lambda: "dfkd.checkpoint", lambda: None, lambda: b"bytes", lambda: [base], lambda: {},
        lambda: {1: torch.zeros(2)}, lambda: {"a": {"b": torch.zeros(1)}}, lambda: collections.OrderedDict(),
        lambda: 3.5, lambda: [[torch.zeros(1)]], lambda: {"state_dict": {}}, lambda: {"format": 7},
    ]
    index = rng.randrange(len(choices))
    return choices[index](), f"variant {index}"


def _other_file(base: Dict[str, Any], rng: random.Random, folder: str, name: str) -> tuple:
    """Files dfkd (or the user) has around that are not model checkpoints."""
    from dfkd.generators import SyntheticGraphSet

    path = os.path.join(folder, name)
    op = rng.choice(["synthetic_set", "distill_state", "report_json", "gin_text", "empty", "folder", "other_zip",
                     "gzip", "future_format", "text"])
    if op == "synthetic_set":
        spec = dfkd.FeatureSpec(dim=7)
        x = torch.eye(7)[torch.zeros(4, dtype=torch.long)]
        edges = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
        SyntheticGraphSet.from_edges(x, edges, torch.tensor([0, 0, 1, 1]), 2, torch.tensor([0, 1]), spec).save(path)
    elif op == "distill_state":
        torch.save({"format": "dfkd.distill-state", "fingerprint": "0" * 16, "epoch": 3,
                    "student": base["state_dict"], "optimizer": {}, "source": {}, "history": []}, path)
    elif op == "report_json":
        open(path, "w").write('{"config": {"epochs": 10}, "history": []}\n')
    elif op == "gin_text":
        open(path, "w").write("1\n2 0\n0 1 1\n0 1 0\n")
    elif op == "empty":
        open(path, "wb").close()
    elif op == "folder":
        os.makedirs(path, exist_ok=True)
    elif op == "other_zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("hello.txt", "not a checkpoint")
    elif op == "gzip":
        import gzip

        open(path, "wb").write(gzip.compress(_valid_bytes(base)))
    elif op == "future_format":
        torch.save({**base, "format": "dfkd.checkpoint-v9"}, path)
    else:
        open(path, "w").write("this is a text file\n" * 10)
    return path, op


def make_cases(kind: str, count: int, folder: str, seed: int = 0,
               base: Optional[Dict[str, Any]] = None) -> List[Case]:
    """``count`` seeded cases of ``kind`` written into ``folder``."""
    if kind not in KINDS:
        raise ValueError(f"unknown fuzz kind {kind!r}: choose from {KINDS}")
    base = base or base_checkpoint()
    valid = _valid_bytes(base)
    rng = random.Random(f"{kind}-{seed}")
    os.makedirs(folder, exist_ok=True)
    cases = []
    for i in range(count):
        name = f"{kind}-{i:04d}.pt"
        path = os.path.join(folder, name)
        marker = None
        if kind == "truncated":
            cut = rng.randrange(len(valid)) if i else 0
            open(path, "wb").write(valid[:cut])
            desc = f"first {cut} of {len(valid)} bytes"
        elif kind == "random_bytes":
            size = rng.choice([1, 8, 100, 1000, 5000])
            prefix = rng.choice([b"", b"PK\x03\x04", b"\x80\x02", b"\x80\x05\x95"])
            open(path, "wb").write(prefix + bytes(rng.getrandbits(8) for _ in range(size)))
            desc = f"{len(prefix) + size} random bytes"
        elif kind == "bit_flips":
            data = bytearray(valid)
            flips = rng.choice([1, 2, 8, 64])
            for _ in range(flips):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            open(path, "wb").write(bytes(data))
            desc = f"{flips} flipped bits"
        elif kind == "wrong_keys":
            obj, desc = _wrong_keys(base, rng)
            _save(obj, path)
        elif kind == "wrong_types":
            obj, desc = _wrong_types(base, rng)
            _save(obj, path)
        elif kind == "wrong_shapes":
            obj, desc = _wrong_shapes(base, rng)
            _save(obj, path)
        elif kind == "non_finite":
            obj, desc = _non_finite(base, rng)
            _save(obj, path)
        elif kind == "non_dict":
            obj, desc = _non_dict(base, rng)
            _save(obj, path)
        elif kind == "huge_sizes":
            path, desc = _huge(base, rng, folder, name)
        elif kind == "code_pickle":
            path, desc, marker = _code_pickle(base, rng, folder, name)
        else:
            path, desc = _other_file(base, rng, folder, name)
        cases.append(Case(kind=kind, name=f"{name}: {desc}", path=path, marker=marker))
    return cases


# --- the judge -----------------------------------------------------------------------------------------
def _forward(model: torch.nn.Module, in_channels: int) -> torch.Tensor:
    x = torch.eye(in_channels)[torch.tensor([0, 1, 0, 1]) % in_channels]
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    return model(x, edge_index, torch.zeros(4, dtype=torch.long))


def judge(case: Case, trust: bool = False) -> Outcome:
    """Load ``case`` as the CLI would and classify what happened (see the module docstring)."""
    try:
        ckpt = dfkd.load_checkpoint(case.path, trust=trust)
        model = ckpt.build_model()
        out = _forward(model, ckpt.model_config.in_channels)
        ok = out.shape == (1, ckpt.num_classes) and bool(torch.isfinite(out).all())
        verdict, detail = ("accepted", "valid after mutation") if ok else ("lost", f"loads but outputs {out}")
    except (CheckpointError, ValueError) as exc:
        text = str(exc)
        clean = "\n" not in text and case.path in text and len(text) < 1000
        verdict, detail = ("refused" if clean else "lost"), text
    except Exception as exc:  # any other type escapes the CLI's one-line handler
        verdict, detail = "lost", f"{type(exc).__name__}: {str(exc)[:300]}"
    if case.marker and os.path.exists(case.marker):
        verdict, detail = "lost", f"the pickled payload ran ({case.marker} exists): {detail}"
    return Outcome(case=case, verdict=verdict, detail=detail)


def run_corpus(folder: str, per_kind: int, seed: int = 0, kinds=KINDS) -> Dict[str, Dict[str, Any]]:
    """Build and judge ``per_kind`` cases of every kind; counts and the lost cases per kind."""
    base = base_checkpoint()
    results: Dict[str, Dict[str, Any]] = {}
    for kind in kinds:
        outcomes = [judge(c) for c in make_cases(kind, per_kind, os.path.join(folder, kind), seed, base)]
        counts = collections.Counter(o.verdict for o in outcomes)
        results[kind] = {"tried": len(outcomes), "refused": counts["refused"], "accepted": counts["accepted"],
                         "lost": counts["lost"], "lost_cases": [(o.case.name, o.detail) for o in outcomes
                                                                if o.verdict == "lost"],
                         "examples": sorted({o.detail.replace(o.case.path, "FILE")[:160] for o in outcomes
                                             if o.verdict == "refused"})[:3],
                         "accepted_mutations": sorted({o.case.name.split(": ", 1)[-1] for o in outcomes
                                                       if o.verdict == "accepted"})}
    return results
