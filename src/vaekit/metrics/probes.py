"""What the codes keep: reconstruction error, and how well simple classifiers read labels from codes.

* Reconstruction error of E[x|z = encode(x)] on held-out data: squared error summed over pixels
  (per image) and averaged over pixels, and binary cross-entropy summed over pixels (the Bernoulli
  negative log-likelihood of Kingma & Welling, Appendix C.1, at the deterministic code).
* Linear probe: multinomial logistic regression on standardised codes, fit on the training codes,
  accuracy on the test codes (the classic "use z as features for a classifier").
* k-nearest-neighbour accuracy (Euclidean, majority of k) on the raw codes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def reconstruction_errors(x: Tensor, recon: Tensor, eps: float = 1e-6) -> dict[str, float]:
    """Mean errors between data x (N, *S) in [0, 1] and reconstructions recon (N, *S).

    ``mse`` is summed over the pixels of an image and averaged over images, ``mse_pixel`` is
    averaged over pixels too, ``bce`` is -sum_i [x_i log r_i + (1 - x_i) log(1 - r_i)] per image
    with r clamped into (eps, 1 - eps): linear decoders (PCA) leave [0, 1] and sigmoids round to
    exactly 0 or 1 in float32, either of which would make the log infinite.
    """
    x64 = x.detach().double().flatten(1)  # (N, P)
    r64 = recon.detach().double().reshape(x64.shape)  # (N, P)
    sq = (x64 - r64) ** 2
    r = r64.clamp(eps, 1 - eps)
    bce = -(x64 * torch.log(r) + (1 - x64) * torch.log1p(-r)).sum(1)  # (N,)
    return {"mse": float(sq.sum(1).mean()), "mse_pixel": float(sq.mean()), "bce": float(bce.mean())}


def _np(a: Tensor | np.ndarray) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, Tensor) else np.asarray(a)


def linear_probe(
    train_codes: Tensor | np.ndarray,
    train_y: Tensor | np.ndarray,
    test_codes: Tensor | np.ndarray,
    test_y: Tensor | np.ndarray,
    *,
    C: float = 1.0,
    max_iter: int = 1000,
) -> float:
    """Test accuracy of logistic regression fit on standardised training codes (N, D) -> labels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from threadpoolctl import threadpool_limits

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    # L-BFGS on (N, D) codes with D ~ 20 is latency bound: multi-threaded BLAS only spins on it.
    with threadpool_limits(limits=1, user_api="blas"):
        clf.fit(_np(train_codes).astype(np.float64), _np(train_y))
        return float(clf.score(_np(test_codes).astype(np.float64), _np(test_y)))


def knn_accuracy(
    train_codes: Tensor | np.ndarray,
    train_y: Tensor | np.ndarray,
    test_codes: Tensor | np.ndarray,
    test_y: Tensor | np.ndarray,
    *,
    k: int = 5,
) -> float:
    """Test accuracy of the majority vote of the k nearest training codes (Euclidean distance)."""
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=min(k, len(train_codes)))
    clf.fit(_np(train_codes).astype(np.float32), _np(train_y))
    return float(clf.score(_np(test_codes).astype(np.float32), _np(test_y)))


__all__ = ["knn_accuracy", "linear_probe", "reconstruction_errors"]
