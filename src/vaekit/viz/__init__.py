"""Pictures of what a model learned.

``grid`` tiles images (Pillow, exact pixels); ``latent`` holds the latent-space arithmetic;
``plots`` draws matplotlib figures; ``catalog`` names the plots and decides which apply;
``progress`` is what training writes; ``report`` makes the self-contained HTML page of a run.
"""

from .grid import image_grid, save_grid

__all__ = ["image_grid", "save_grid"]
