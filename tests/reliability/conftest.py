"""Fixtures of the reliability tests: the shared fuzz corpus and crash helpers, loaded by path (the
suite runs with ``--import-mode=importlib``, so sibling modules are not importable by name)."""
import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def load_helper(name: str):
    """``tests/reliability/<name>.py`` as a module (also used by ``benchmarks/reliability.py``)."""
    spec = importlib.util.spec_from_file_location(f"dfkd_reliability_{name}", os.path.join(HERE, f"{name}.py"))
    if spec.name in sys.modules:
        return sys.modules[spec.name]
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def corpus():
    return load_helper("corpus")


@pytest.fixture(scope="session")
def crash():
    return load_helper("crash")


@pytest.fixture(scope="session")
def tiny_teacher_path(crash, tmp_path_factory):
    """An untrained, seeded gin-2-8 teacher checkpoint of MUTAG's input width (no training needed)."""
    return crash.make_teacher(str(tmp_path_factory.mktemp("reliability") / "teacher.pt"))


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models run fastest on one thread, and OpenMP barriers spin badly on a loaded machine; every
    process of a kill/resume trial uses the same count, so float results match bit for bit."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
