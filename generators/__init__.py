"""Graph generators that synthesise training graphs from a frozen teacher.

Installed as ``dfkd.generators`` (see ``package_dir`` in setup.cfg).
"""
from dfkd.generators.registry import get_generator_class, list_generators, register_generator

__all__ = ["get_generator_class", "list_generators", "register_generator"]
