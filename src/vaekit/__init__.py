"""vaekit: variational autoencoders (Kingma & Welling, 2014) that train fast and evaluate honestly.

The public API::

    import vaekit
    cfg = vaekit.resolve("pytorch-example")          # a preset, a file and/or overrides
    run = vaekit.train(cfg, "runs/my-vae")           # writes a run folder, returns a Run
    model = vaekit.load("runs/my-vae")               # a trained model, eval mode
    model.sample(64); model.reconstruct(x); model.encode(x)
"""

__version__ = "0.1.0"

from .config import Config, DataConfig, ModelConfig, TrainConfig, preset_names, resolve  # noqa: E402
from .data import open_data  # noqa: E402
from .errors import VaekitError  # noqa: E402
from .evaluate import elbo, evaluate  # noqa: E402
from .models import MODELS, Model, Terms, register  # noqa: E402
from .run import Run, load, load_run  # noqa: E402
from .train import train  # noqa: E402

__all__ = [
    "MODELS",
    "Config",
    "DataConfig",
    "Model",
    "ModelConfig",
    "Run",
    "Terms",
    "TrainConfig",
    "VaekitError",
    "__version__",
    "elbo",
    "evaluate",
    "load",
    "load_run",
    "open_data",
    "preset_names",
    "register",
    "resolve",
    "train",
]
