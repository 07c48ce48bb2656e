"""Graph generators that synthesise training graphs from a frozen teacher.

Installed as ``dfkd.generators`` (see ``package_dir`` in setup.cfg). Importing the package
registers every built-in family.
"""
from dfkd.generators.registry import get_generator_class, list_generators, register_generator
from dfkd.generators.synthetic import SyntheticGraphSet
from dfkd.generators.base import GraphGenerator, OnlineGraphGenerator
from dfkd.generators.adversarial import AdversarialConfig, AdversarialGraphGenerator
from dfkd.generators.conditional import ConditionalConfig, ConditionalGraphGenerator
from dfkd.generators.gfkd import BernoulliGraphGenerator, GFKDConfig
from dfkd.generators.prior import PriorConfig, PriorGraphGenerator
from dfkd.generators.random import RandomGraphConfig, RandomGraphGenerator

__all__ = [
    "AdversarialConfig", "AdversarialGraphGenerator", "BernoulliGraphGenerator", "ConditionalConfig",
    "ConditionalGraphGenerator", "GFKDConfig", "GraphGenerator", "OnlineGraphGenerator", "PriorConfig", "PriorGraphGenerator", "RandomGraphConfig",
    "RandomGraphGenerator", "SyntheticGraphSet", "get_generator_class", "list_generators", "register_generator",
]
