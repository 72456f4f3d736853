"""deg: the Dynamic Exploration Graph, an approximate nearest neighbour index in numba."""

from deg.index import Index

__all__ = ["Index", "__version__"]
__version__ = "0.1.0"
