"""Fields: the networks that map points (and directions) to what the renderer composites."""
from .hash_grid import HashGrid

__all__ = ["HashGrid"]
