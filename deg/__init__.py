"""deg: the Dynamic Exploration Graph, an approximate nearest neighbour index in numba."""

from deg import analysis
from deg._filtering import Filter
from deg._warmup import warmup
from deg.index import Index

__all__ = ["Filter", "Index", "__version__", "analysis", "warmup"]
__version__ = "0.1.0"
