"""Self-describing, safely loaded, atomically written model checkpoints.

A checkpoint is a plain dict of Python types and tensors, so it loads with
``torch.load(weights_only=True)``: architecture config (enough to rebuild the
model), ``state_dict``, task, input feature spec, class labels, size
statistics of the training graphs and provenance. Arbitrary pickles (a whole
``nn.Module``) load only with ``trust=True``.
"""
from __future__ import annotations

import dataclasses
import io
import logging
import math
import os
import pickle
import re
import sys
import tempfile
import warnings
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from dfkd.config import FeatureSpec, GraphSizeStats, ModelConfig
from dfkd.nn.registry import build_model, parse_arch
from dfkd.version import __version__

logger = logging.getLogger(__name__)

FORMAT = "dfkd.checkpoint"
FORMAT_VERSION = 1
TASKS = ("classification", "regression")
_PREFIXES = ("module.", "_orig_mod.")


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit; the message names the file and the fix.

    Always one line: whitespace runs (a tensor's repr, a chained message) are collapsed, so the CLI's
    one-line error contract holds whatever a damaged file contains.
    """

    def __init__(self, message: Any = "") -> None:
        super().__init__(" ".join(str(message).split()))


def atomic_save(obj: Any, path: str) -> None:
    """Serialise ``obj`` in memory, write it to a temporary file in the same folder, fsync, then rename
    over ``path``.

    A crash (even ``kill -9``) or a full disk leaves the previous file at ``path`` intact. Serialising
    first matters: ``torch.save`` into a file swallows the writer's ``OSError`` (a full disk surfaces as
    an opaque ``RuntimeError``), while a plain ``write`` of the bytes raises it with its ``errno``.

    Raises:
        OSError: with the original ``errno`` and a one-line message naming ``path`` and the fix.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    # The name says whose temporary file it is, so one left by a killed writer can be recognised.
    prefix = f".tmp-{os.path.basename(path)}.{os.getpid()}-"
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".pt", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        remove_orphaned_temporaries(path)
    except OSError as exc:
        _unlink_quietly(tmp)
        previous = "the previous file there is unchanged" if os.path.exists(path) else "nothing was written"
        raise OSError(exc.errno, f"could not write {path} ({exc.strerror or exc}): {previous}; "
                                 "free disk space or choose another folder, then retry") from exc
    except BaseException:
        _unlink_quietly(tmp)
        raise


def remove_orphaned_temporaries(path: str) -> List[str]:
    """Delete the temporary files of :func:`atomic_save` for ``path`` whose writing process is gone (a
    ``kill -9`` mid-write leaves one behind); a live process's file is left alone. Returns the removed paths."""
    folder, name = os.path.split(os.path.abspath(path))
    pattern = re.compile(r"\.tmp-" + re.escape(name) + r"\.(\d+)-[^/]*\.pt")
    removed = []
    for entry in os.listdir(folder):
        match = pattern.fullmatch(entry)
        if match and not _process_alive(int(match.group(1))):
            _unlink_quietly(os.path.join(folder, entry))
            removed.append(os.path.join(folder, entry))
    if removed:
        logger.info("removed %d temporary file(s) left by interrupted writes of %s", len(removed), path)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def safe_torch_load(path: str, trust: bool = False, map_location: Any = "cpu") -> Any:
    """``torch.load`` with ``weights_only=True`` unless ``trust``; one-line :class:`CheckpointError` on failure."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if trust:
        warnings.warn(f"loading {path} with trust=True: arbitrary code in the file can run", stacklevel=4)
    try:
        return torch.load(path, map_location=map_location, weights_only=not trust)
    except pickle.UnpicklingError as exc:
        if trust:
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({_first_line(exc)})") from None
        text = str(exc)
        found = re.search(r"GLOBAL (\S+) was not an allowed global", text)
        if found:  # a well-formed pickle that names a class or function: an object, or code
            raise CheckpointError(
                f"{path}: holds pickled Python objects that safe loading refuses ({found.group(1)}: such as a "
                "whole nn.Module, or code); re-save its state_dict, or pass --trust-checkpoint / trust=True if you "
                "trust its source"
            ) from None
        # Anything else the safe unpickler cannot parse: garbage, or a plain pickle.dump (other opcodes).
        opcode = re.search(r"Unsupported operand (\d+)", text)
        detail = f"unsupported pickle opcode {opcode.group(1)}" if opcode else _first_line(exc)
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint: truncated or corrupted, or a plain pickle that safe loading "
            f"cannot parse ({detail}); only if it is a pickle from a source you trust, pass --trust-checkpoint"
        ) from None
    except Exception as exc:  # truncated zip, random bytes, ...
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint, truncated or corrupted? ({_first_line(exc)})"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _strip_prefixes(state: Dict[str, Any]) -> Dict[str, Any]:
    out = {}
    for key, value in state.items():
        for prefix in _PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


@dataclasses.dataclass
class Checkpoint:
    """Everything stored with a model. Rebuild it with :meth:`build_model`.

    Attributes:
        model_config: architecture and sizes (``None`` only for trusted pickled modules).
        state_dict: the weights.
        task: ``classification`` or ``regression``.
        feature_spec: node-feature encoding the model expects.
        label_values: raw label of each class index.
        size_stats: aggregate node/degree statistics of the training graphs.
        provenance: free-form facts (dataset, seed, accuracy, dfkd version, ...).
        module: a trusted, fully pickled module (``trust=True`` only).
    """

    model_config: Optional[ModelConfig]
    state_dict: Dict[str, torch.Tensor]
    task: str = "classification"
    feature_spec: Optional[FeatureSpec] = None
    label_values: List[Any] = dataclasses.field(default_factory=list)
    size_stats: Optional[GraphSizeStats] = None
    provenance: Dict[str, Any] = dataclasses.field(default_factory=dict)
    module: Optional[nn.Module] = None
    path: Optional[str] = None

    @property
    def num_classes(self) -> int:
        return self.model_config.out_channels if self.model_config else len(self.label_values)

    @classmethod
    def from_model(cls, model: nn.Module, **meta: Any) -> "Checkpoint":
        """Wrap a zoo model (it carries its ``config``) and metadata."""
        config = getattr(model, "config", None)
        if not isinstance(config, ModelConfig):
            raise CheckpointError(
                f"{type(model).__name__} has no dfkd ModelConfig: save its state_dict and load it with arch=..."
            )
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        return cls(model_config=config, state_dict=state, **meta)

    @classmethod
    def from_module(cls, model: nn.Module, feature_spec: FeatureSpec, num_classes: Optional[int] = None,
                    label_values: Optional[List[Any]] = None, size_stats: Optional[GraphSizeStats] = None,
                    provenance: Optional[Dict[str, Any]] = None, recognise: bool = True) -> "Checkpoint":
        """Wrap any graph-classification module ("bring your own teacher") for :func:`dfkd.distill_student`
        and the generators.

        A module that computes exactly what a zoo model does (a plain stack of PyG ``GINConv`` or
        mean-aggregating ``SAGEConv`` layers, :func:`dfkd.nn.convert.zoo_equivalent`, checked on probe graphs)
        becomes that zoo model, with copies of its weights: it saves in dfkd's format and a student of its
        family can start from its weights. Any other module is kept as it is (in memory, not saved:
        :meth:`save` needs a zoo model) and called as ``model(x, edge_index, batch)`` → ``[B, C]`` logits.

        Args:
            model: the trained classifier.
            feature_spec: how its node features are encoded (e.g. ``dataset.feature_spec``).
            num_classes: its output width (default: ``len(label_values)``).
            label_values: raw label of each class (default: ``0..num_classes-1``).
            size_stats: node/degree statistics of its training graphs (:func:`dfkd.data.size_stats`);
                generators draw graph sizes and degrees from them.
            provenance: free-form facts recorded in the student's checkpoint.
            recognise: look for the zoo model it computes (``False``: keep the module as it is).
        """
        if not isinstance(model, nn.Module):
            raise CheckpointError(f"from_module needs a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(feature_spec, FeatureSpec):
            raise CheckpointError("from_module needs feature_spec=dfkd.FeatureSpec(...) (e.g. dataset.feature_spec): "
                                  "generators synthesise node features from it")
        if num_classes is None and not label_values:
            raise CheckpointError("from_module needs num_classes= (or label_values=): the teacher's output width")
        labels = list(label_values) if label_values else list(range(int(num_classes)))
        if num_classes is not None and len(labels) != num_classes:
            raise CheckpointError(f"label_values has {len(labels)} entries for num_classes={num_classes}")
        config = getattr(model, "config", None)
        config = config if isinstance(config, ModelConfig) else None
        module, facts = model, {"source": f"module {type(model).__name__}", **(provenance or {})}
        if config is None and recognise:
            from dfkd.nn.convert import zoo_equivalent  # PyG's layers, imported only here

            zoo, found = zoo_equivalent(model, feature_spec.dim, len(labels))
            if zoo is not None:
                logger.info("teacher %s computes the zoo model %s: it is used as one (saved in dfkd's format; a "
                            "student of its family can start from its weights)", type(model).__name__, found)
                model, module, config, facts["recognised_as"] = zoo, None, zoo.config, found
            else:
                logger.info("teacher %s is used as a module from other code: %s", type(model).__name__, found)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        return cls(model_config=config, state_dict=state, feature_spec=feature_spec, label_values=labels,
                   size_stats=size_stats, provenance=facts, module=module)

    def to_dict(self) -> Dict[str, Any]:
        if self.model_config is None:
            raise CheckpointError("a pickled module without a ModelConfig cannot be saved in the safe format")
        if self.task not in TASKS:
            raise CheckpointError(f"unknown task {self.task!r}: choose one of {TASKS}")
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dfkd_version": __version__,
            "model_config": self.model_config.to_dict(),
            "state_dict": self.state_dict,
            "task": self.task,
            "feature_spec": self.feature_spec.to_dict() if self.feature_spec else None,
            "label_values": list(self.label_values),
            "size_stats": self.size_stats.to_dict() if self.size_stats else None,
            "provenance": dict(self.provenance),
        }

    def save(self, path: str) -> None:
        """Write atomically (temporary file + rename)."""
        atomic_save(self.to_dict(), path)
        logger.info("saved checkpoint %s", path)

    def build_model(self) -> nn.Module:
        """Rebuild the model with its weights, in eval mode."""
        if self.module is not None:
            if self.module.training:
                logger.warning("%s: the module is in train mode (dropout and BatchNorm batch statistics active): "
                               "switched to eval mode", self.path or type(self.module).__name__)
            return self.module.eval()
        self._check_weights()
        model = build_model(self.model_config)
        try:
            result = model.load_state_dict(self.state_dict, strict=False)
        except RuntimeError as exc:  # shape mismatch
            raise CheckpointError(
                f"{self.path or 'checkpoint'}: weights do not fit {self.model_config.short_name} "
                f"(in={self.model_config.in_channels}, out={self.model_config.out_channels}): "
                f"{_first_line(exc)}; check --arch / --in-channels / --classes"
            ) from None
        problems = []
        if result.missing_keys:
            problems.append(f"missing {_abbrev(result.missing_keys)}")
        if result.unexpected_keys:
            problems.append(f"unexpected {_abbrev(result.unexpected_keys)}")
        if problems:
            raise CheckpointError(
                f"{self.path or 'checkpoint'}: weights do not fit {self.model_config.short_name} "
                f"(in={self.model_config.in_channels}, out={self.model_config.out_channels}): {'; '.join(problems)}; "
                "check --arch / --in-channels / --classes"
            )
        return model.eval()

    def _check_weights(self) -> None:
        """Refuse weights that do not fit the config *before* allocating the model.

        A damaged or hostile file can declare ``hidden=10**9`` or a million layers: building that model
        would exhaust memory (or take minutes) before ``load_state_dict`` could object. The layer count
        is bounded by the number of stored tensors, then the model is built on the ``meta`` device (no
        memory) and every shape compared; once they match, the real model is no larger than the weights
        already in memory. Non-finite weights are refused too: such a model only outputs NaN.
        """
        where, config, state = self.path or "checkpoint", self.model_config, self.state_dict
        fit = (f"{where}: weights do not fit {config.short_name} (in={config.in_channels}, "
               f"out={config.out_channels})")
        advice = "check --arch / --in-channels / --classes"
        if config.num_layers > max(len(state), 1):
            raise CheckpointError(f"{fit}: {config.num_layers} layers declared but only {len(state)} weight tensors "
                                  f"stored; {advice}")
        try:
            with torch.device("meta"):
                skeleton = build_model(config).state_dict()
        except Exception as exc:  # an architecture that cannot be built from this config
            raise CheckpointError(f"{where}: cannot build {config.short_name} from its config "
                                  f"({_first_line(exc)}); {advice}") from None
        problems = []
        missing = [k for k in skeleton if k not in state]
        unexpected = [k for k in state if k not in skeleton]
        wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in skeleton.items()
                 if k in state and tuple(state[k].shape) != tuple(v.shape)]
        if wrong:
            problems.append(f"shape mismatch {_abbrev(wrong)}")
        if missing:
            problems.append(f"missing {_abbrev(missing)}")
        if unexpected:
            problems.append(f"unexpected {_abbrev(unexpected)}")
        if problems:
            raise CheckpointError(f"{fit}: {'; '.join(problems)}; {advice}")
        bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            raise CheckpointError(f"{where}: weights hold NaN or infinite values in {_abbrev(bad)}: the run that "
                                  "wrote them diverged; use an earlier checkpoint")

    @classmethod
    def load(
        cls,
        path: str,
        trust: bool = False,
        map_location: Any = "cpu",
        arch: Optional[str] = None,
        in_channels: Optional[int] = None,
        num_classes: Optional[int] = None,
        features: Optional[str] = None,
    ) -> "Checkpoint":
        """Read a checkpoint: dfkd's format, a plain ``state_dict`` (needs ``arch``,
        ``in_channels``, ``num_classes``) or, with ``trust=True``, a pickled module.

        ``features`` (``one_hot``, ``degree`` or ``continuous``) says how the node features of a checkpoint
        that does not record it (a plain ``state_dict``, a pickled module) are encoded, so generators can
        synthesise inputs: ``one_hot`` of ``in_channels`` node types, ``degree`` one-hot of the node degree
        clipped at ``in_channels − 1``, or ``continuous`` values. A checkpoint that records its encoding
        keeps it; a different ``features`` is refused.
        """
        ckpt = cls._load(path, trust, map_location, arch, in_channels, num_classes)
        if features is not None:
            ckpt.feature_spec = _feature_spec_for(ckpt, features, path)
        return ckpt

    @classmethod
    def _load(cls, path: str, trust: bool, map_location: Any, arch: Optional[str], in_channels: Optional[int],
              num_classes: Optional[int]) -> "Checkpoint":
        obj = safe_torch_load(path, trust=trust, map_location=map_location)
        if isinstance(obj, nn.Module):
            return cls(model_config=getattr(obj, "config", None), state_dict=obj.state_dict(), module=obj,
                       path=path, provenance={"source": "pickled module"})
        if not isinstance(obj, dict):
            raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a dfkd checkpoint or state_dict")
        if obj.get("format") == FORMAT:
            return cls._from_dfkd_dict(obj, path)
        state = obj.get("state_dict", obj) if isinstance(obj.get("state_dict", None), dict) else obj
        if state and all(isinstance(v, torch.Tensor) for v in state.values()):
            if arch is None or in_channels is None or num_classes is None:
                raise CheckpointError(
                    f"{path}: is a plain state_dict without architecture; pass --arch NAME-LAYERS-HIDDEN "
                    "--in-channels F --classes C (arch=, in_channels=, num_classes= in Python)"
                )
            config = ModelConfig(**{**parse_arch(arch), "in_channels": in_channels, "out_channels": num_classes})
            return cls(model_config=config, state_dict=_strip_prefixes(state), path=path,
                       label_values=list(range(num_classes)), provenance={"source": "state_dict"})
        raise CheckpointError(f"{path}: a dict that is neither a dfkd checkpoint nor a state_dict of tensors")

    @classmethod
    def _from_dfkd_dict(cls, obj: Dict[str, Any], path: str) -> "Checkpoint":
        version = obj.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise CheckpointError(f"{path}: damaged dfkd checkpoint (format_version is {_short(version)}, not a "
                                  "version number)")
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: checkpoint format version {version!r} is newer than this dfkd reads ({FORMAT_VERSION}); "
                "upgrade dfkd"
            )
        try:
            config = ModelConfig.from_dict(_typed(obj["model_config"], ModelConfig, "model_config"))
            spec = (FeatureSpec.from_dict(_typed(obj["feature_spec"], FeatureSpec, "feature_spec"))
                    if obj.get("feature_spec") is not None else None)
            stats = (GraphSizeStats.from_dict(_typed(obj["size_stats"], GraphSizeStats, "size_stats"))
                     if obj.get("size_stats") is not None else None)
            state = obj["state_dict"]
            task = obj.get("task", "classification")
            labels = obj.get("label_values") or []
            provenance = obj.get("provenance") or {}
            if not isinstance(labels, list) or not all(isinstance(v, (int, float, str)) for v in labels):
                raise TypeError("label_values is not a list of raw labels (numbers or strings)")
            if not isinstance(provenance, dict):
                raise TypeError(f"provenance is a {type(provenance).__name__}, not a dict")
        except KeyError as exc:
            raise CheckpointError(f"{path}: damaged dfkd checkpoint (no {exc.args[0]!r} entry)") from None
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: damaged dfkd checkpoint ({_first_line(exc)})") from None
        if not isinstance(task, str) or task not in TASKS:
            raise CheckpointError(f"{path}: unknown task {_short(task)}: expected one of {TASKS}")
        if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                  for k, v in state.items()):
            raise CheckpointError(f"{path}: damaged dfkd checkpoint (state_dict is not a dict of tensors)")
        problem = _inconsistency(config, spec, stats, labels, task)
        if problem:
            raise CheckpointError(f"{path}: damaged dfkd checkpoint ({problem})")
        return cls(
            model_config=config, state_dict=_strip_prefixes(state), task=task, feature_spec=spec,
            label_values=list(labels), size_stats=stats, provenance=dict(provenance), path=path,
        )


# Field annotations (strings under ``from __future__ import annotations``) -> accepted Python types.
_FIELD_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "list": (list,),
                "Optional[float]": (int, float, type(None)), "Optional[int]": (int, type(None)),
                "Optional[List[float]]": (list, type(None))}


def _short(value: Any) -> str:
    """A one-line, bounded description of a stored value for error messages."""
    text = " ".join(repr(value).split())
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def _typed(data: Any, cls: type, what: str) -> Dict[str, Any]:
    """``data`` when it is a dict whose known fields have the types ``cls`` declares (no bool for a
    number, finite floats); ``TypeError`` naming the field otherwise. Unknown keys are left to
    ``from_dict``, which names them."""
    if not isinstance(data, dict):
        raise TypeError(f"{what} is a {type(data).__name__}, not a dict")
    for field in dataclasses.fields(cls):
        allowed = _FIELD_TYPES.get(str(field.type))
        if allowed is None or field.name not in data:
            continue
        value = data[field.name]
        ok = isinstance(value, allowed) and (bool in allowed or not isinstance(value, bool))
        if ok and isinstance(value, float) and not math.isfinite(value):
            ok = False
        if not ok:
            raise TypeError(f"{what}.{field.name} is {_short(value)}, expected {field.type}")
    return data


def _inconsistency(config: ModelConfig, spec: Optional[FeatureSpec], stats: Optional[GraphSizeStats],
                   labels: List[Any], task: str) -> str:
    """Why the stored metadata contradicts itself ('' when it does not)."""
    if spec is not None and spec.dim != config.in_channels:
        return f"feature_spec.dim {spec.dim} != model_config.in_channels {config.in_channels}"
    if labels and task == "classification" and len(labels) != config.out_channels:
        return f"{len(labels)} label_values for {config.out_channels} classes"
    if stats is not None and not (0 <= stats.min_nodes <= stats.max_nodes and stats.mean_degree >= 0):
        return (f"size_stats out of order (min_nodes {stats.min_nodes}, max_nodes {stats.max_nodes}, "
                f"mean_degree {stats.mean_degree})")
    if stats is not None and stats.type_frequencies is not None and spec is not None and spec.categorical \
            and len(stats.type_frequencies) != spec.dim:
        return f"size_stats.type_frequencies has {len(stats.type_frequencies)} entries for feature_spec.dim {spec.dim}"
    return ""


def _abbrev(keys: List[str], limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    return f"[{shown}{', ...' if len(keys) > limit else ''}] ({len(keys)} keys)"


def save_model(path: str, model: nn.Module, **meta: Any) -> Checkpoint:
    """Save a zoo model with metadata (see :class:`Checkpoint` fields); returns the checkpoint."""
    ckpt = Checkpoint.from_model(model, **meta)
    ckpt.save(path)
    ckpt.path = path
    return ckpt


def encoding_spec(dim: int, features: str) -> FeatureSpec:
    """The :class:`FeatureSpec` of ``dim`` node features encoded as ``features``: one-hot node types
    ``0..dim-1``, one-hot degree clipped at ``dim - 1``, or continuous values."""
    if features not in ("one_hot", "degree", "continuous"):
        raise CheckpointError(f"unknown node-feature encoding {features!r}: choose one_hot, degree or continuous")
    return FeatureSpec(dim=dim, encoding=features, categories=list(range(dim)) if features == "one_hot" else [],
                       max_degree=dim - 1 if features == "degree" else 0)


def _feature_spec_for(ckpt: Checkpoint, features: str, path: str) -> FeatureSpec:
    """The :class:`FeatureSpec` a ``features`` encoding names for ``ckpt``'s input width (a checkpoint that
    records its own encoding keeps it; another one is refused)."""
    if ckpt.feature_spec is not None:
        if ckpt.feature_spec.encoding != features:
            raise CheckpointError(f"{path}: records {ckpt.feature_spec.encoding} node features, not {features}: "
                                  "leave out --features (features=) for a dfkd checkpoint")
        return ckpt.feature_spec
    dim = ckpt.model_config.in_channels if ckpt.model_config else None
    if dim is None:
        raise CheckpointError(f"{path}: the model's input width is unknown: pass --in-channels F (in_channels=)")
    return encoding_spec(dim, features)


def load_code_teacher(factory: str, weights: str, in_channels: Optional[int], num_classes: Optional[int],
                      features: Optional[str] = None, kwargs: Optional[Dict[str, Any]] = None,
                      trust: bool = False, recognise: bool = True) -> Checkpoint:
    """A teacher built by the user's own code: ``factory`` (``"package.module:callable"``, importable from
    the current directory or ``sys.path``) is called with ``kwargs`` and must return an ``nn.Module``
    ``forward(x, edge_index, batch) → [B, C]``; the ``state_dict`` in ``weights`` (loaded safely) is loaded
    into it, strictly. Importing runs that code, so ``trust=True`` is required.

    ``in_channels`` and ``features`` (default ``one_hot``) say how its node features are encoded,
    ``num_classes`` its output width; the result is a :meth:`Checkpoint.from_module` checkpoint (the zoo model
    it computes, if any and ``recognise``).
    """
    import importlib

    if not trust:
        raise CheckpointError(f"--teacher-module {factory} imports and runs that code: add --trust-checkpoint "
                              "(trust=True) if you trust it")
    module_name, sep, attr = factory.partition(":")
    if not sep or not module_name or not attr:
        raise CheckpointError(f"--teacher-module {factory!r}: expected package.module:factory")
    if in_channels is None or num_classes is None:
        raise CheckpointError("--teacher-module needs --in-channels F and --classes C (in_channels=, num_classes=): "
                              "the node-feature width and output width of the model")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: the user's own package beside them
    try:
        build = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise CheckpointError(f"--teacher-module {factory}: cannot import it ({_first_line(exc)}); run from the "
                              "folder that holds the package, or put it on PYTHONPATH") from None
    try:
        model = build(**(kwargs or {}))
    except TypeError as exc:  # wrong --teacher-kwargs
        raise CheckpointError(f"--teacher-module {factory}: {_first_line(exc)}; set its arguments with "
                              "--teacher-kwargs JSON") from None
    if not isinstance(model, nn.Module):
        raise CheckpointError(f"--teacher-module {factory} returned a {type(model).__name__}, not a torch.nn.Module")
    state = safe_torch_load(weights)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{weights}: not a state_dict of tensors to load into {factory}")
    try:
        model.load_state_dict(_strip_prefixes(state))
    except RuntimeError as exc:
        raise CheckpointError(f"{weights} does not fit {factory}: {_first_line(exc)}") from None
    ckpt = Checkpoint.from_module(model.eval(), feature_spec=encoding_spec(in_channels, features or "one_hot"),
                                  num_classes=num_classes, provenance={"source": f"module {factory}", "weights": weights},
                                  recognise=recognise)
    ckpt.path = weights
    return ckpt


def load_checkpoint(path: str, trust: bool = False, **kwargs: Any) -> Checkpoint:
    """Read a checkpoint (see :meth:`Checkpoint.load`)."""
    return Checkpoint.load(path, trust=trust, **kwargs)


def load_model(path: str, trust: bool = False, **kwargs: Any) -> nn.Module:
    """Rebuild a model from a checkpoint in one call; it comes back in eval mode."""
    return Checkpoint.load(path, trust=trust, **kwargs).build_model()
