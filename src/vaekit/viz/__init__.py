"""Pictures of what a model learned."""

from .grid import image_grid, save_grid

__all__ = ["image_grid", "save_grid"]
