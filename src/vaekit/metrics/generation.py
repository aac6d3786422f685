"""Generation quality on MNIST-like data: a Fréchet distance and an Inception Score computed with a
small MNIST classifier instead of Inception-v3.

* Fréchet distance (Heusel et al. 2017, "GANs trained by a two time-scale update rule", eq. 6 / the
  FID): fit Gaussians N(m1, C1), N(m2, C2) to the classifier's penultimate-layer features of two
  image sets; d^2 = ||m1 - m2||^2 + Tr(C1 + C2 - 2 (C1 C2)^{1/2}) (Dowson & Landau 1982).
* Inception Score (Salimans et al. 2016, "Improved techniques for training GANs", sec. 4):
  IS = exp E_x[KL(p(y|x) || p(y))], with p(y) the marginal of the predictions over the set.

The classifier (:class:`MnistClassifier`, two 5x5 conv layers, ~99% test accuracy) is trained by
``scripts/train_classifier.py``; its weights ship as ``data/files/mnist_classifier.safetensors``
and are read with safetensors only. It applies to 28x28 grey 10-class images, nothing else.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checkpoint import load_tensors, load_weights
from ..errors import CheckpointError

SHAPE = (1, 28, 28)  # the only data shape the classifier accepts
N_CLASSES = 10
FEATURES = 128  # width of the penultimate layer: the space the Fréchet distance is measured in


class MnistClassifier(nn.Module):
    """Conv(1->16, 5) -> pool -> Conv(16->32, 5) -> pool -> Dense 128 (features) -> Dense 10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5)  # (B, 16, 24, 24), pooled to 12x12
        self.conv2 = nn.Conv2d(16, 32, 5)  # (B, 32, 8, 8), pooled to 4x4
        self.fc1 = nn.Linear(32 * 4 * 4, FEATURES)
        self.fc2 = nn.Linear(FEATURES, N_CLASSES)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer activations (B, 128) for images x (B, 1, 28, 28) in [0, 1]."""
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return F.relu(self.fc1(h.flatten(1)))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (B, 10)."""
        return self.fc2(self.features(x))


def weights_path() -> Path:
    """Where the shipped classifier weights live inside the package."""
    return Path(str(resources.files("vaekit.data") / "files" / "mnist_classifier.safetensors"))


@functools.lru_cache(maxsize=1)
def load_classifier() -> MnistClassifier:
    """The shipped classifier in eval mode (weights read with safetensors, never pickle)."""
    path = weights_path()
    if not path.is_file():
        raise CheckpointError(
            f"{path} is missing: reinstall vaekit or run 'python scripts/train_classifier.py'"
        )
    tensors, _ = load_tensors(path)
    model = MnistClassifier()
    load_weights(model, tensors, path)
    return model.eval()


def supports(shape: tuple[int, ...], n_classes: int | None = N_CLASSES) -> str | None:
    """None when the classifier applies to data of ``shape``; otherwise why it does not."""
    if tuple(shape) != SHAPE:
        return f"generation metrics need 28x28 grey images, this data is {tuple(shape)}"
    if n_classes is not None and n_classes != N_CLASSES:
        return f"generation metrics need 10-class data, this data has {n_classes} classes"
    return None


@torch.no_grad()
def classify(images: Tensor, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features (N, 128) and class probabilities (N, 10) for images (N, 1, 28, 28)."""
    net = load_classifier()
    feats, probs = [], []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].float().cpu().reshape(-1, *SHAPE).clamp(0, 1)
        h = net.features(x)
        feats.append(h.double().numpy())
        probs.append(torch.softmax(net.fc2(h).double(), -1).numpy())
    return np.concatenate(feats), np.concatenate(probs)


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and unbiased covariance (F, F) of features (N, F)."""
    f = np.asarray(features, dtype=np.float64)
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, cov1) and N(mu2, cov2).

    d^2 = ||mu1 - mu2||^2 + Tr(cov1) + Tr(cov2) - 2 Tr((cov1 cov2)^{1/2}). The trace of the square
    root is the sum of square roots of the eigenvalues of cov1 cov2, which are those of the
    symmetric PSD matrix S cov2 S with S = cov1^{1/2}; computing it that way stays real and stable
    even when the covariances are singular (fewer samples than features).
    """
    from threadpoolctl import threadpool_limits

    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    with threadpool_limits(limits=1, user_api="blas"):  # (F, F) with F ~ 128: threads only spin
        w1, v1 = np.linalg.eigh((cov1 + cov1.T) / 2)
        s1 = (v1 * np.sqrt(np.clip(w1, 0, None))) @ v1.T  # cov1^{1/2}
        inner = s1 @ cov2 @ s1
        eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(eig, 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * tr_sqrt)


def inception_score(probs: np.ndarray, eps: float = 1e-12) -> float:
    """exp E_x[KL(p(y|x) || p(y))] for predicted class probabilities (N, K); 1 <= IS <= K."""
    p = np.asarray(probs, dtype=np.float64)
    marginal = p.mean(0, keepdims=True)  # p(y), (1, K)
    kl = (p * (np.log(p + eps) - np.log(marginal + eps))).sum(1)  # (N,)
    return float(np.exp(kl.mean()))


class Reference:
    """Feature statistics of a reference image set (the test set), for FID against it."""

    def __init__(self, images: Tensor) -> None:
        feats, _ = classify(images)
        self.mu, self.cov = gaussian_stats(feats)
        self.n = len(images)

    def score(self, images: Tensor) -> dict[str, float]:
        """FID against the reference and IS of ``images`` (N, 1, 28, 28), plus N."""
        feats, probs = classify(images)
        mu, cov = gaussian_stats(feats)
        return {"fid": frechet_distance(mu, cov, self.mu, self.cov), "is": inception_score(probs), "n": len(images)}


__all__ = [
    "MnistClassifier",
    "Reference",
    "classify",
    "frechet_distance",
    "gaussian_stats",
    "inception_score",
    "load_classifier",
    "supports",
    "weights_path",
]
