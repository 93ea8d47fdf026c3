"""Empty-space skipping: the occupancy grid that ``fastfield.march_rays`` walks, and early ray
termination for the packed samples it produces. Pure PyTorch (the marching kernels load on the
first ``march_rays`` call)."""
from .grid import OccupancyGrid
from .termination import collapse_samples, compact_samples, termination_mask, transmittance

__all__ = ["OccupancyGrid", "transmittance", "termination_mask", "compact_samples",
           "collapse_samples"]
