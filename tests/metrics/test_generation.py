"""Fréchet distance and Inception Score against closed forms; the shipped classifier loads and works."""

import numpy as np
import pytest
import torch
from scipy.linalg import sqrtm
from scipy.stats import special_ortho_group

import vaekit
from vaekit.metrics import generation as gen


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    # Commuting (diagonal) covariances: d^2 = ||m1 - m2||^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
    m1, m2 = np.array([0.0, 1.0, -2.0]), np.array([3.0, 1.0, 2.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = 25.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 0.5) ** 2
    assert gen.frechet_distance(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(expected, rel=1e-12)
    # Rotating both Gaussians by the same orthogonal R changes nothing (a full, non-diagonal case).
    r = special_ortho_group.rvs(3, random_state=0)
    d = gen.frechet_distance(r @ m1, r @ np.diag(a) @ r.T, r @ m2, r @ np.diag(b) @ r.T)
    assert d == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_matches_the_matrix_square_root_formula():
    # Non-commuting full covariances: compare with Tr(C1 + C2 - 2 sqrtm(C1 C2)) from scipy.
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    c1, c2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    expected = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * sqrtm(c1 @ c2).real)
    assert gen.frechet_distance(m1, c1, m2, c2) == pytest.approx(expected, rel=1e-8)
    assert gen.frechet_distance(m1, c1, m1, c1) == pytest.approx(0.0, abs=1e-9)


def test_gaussian_stats_are_the_sample_mean_and_unbiased_covariance():
    f = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 4.0]])  # (N=3, F=2)
    mu, cov = gen.gaussian_stats(f)
    np.testing.assert_allclose(mu, [2.0, 2.0])
    np.testing.assert_allclose(cov, [[4.0, 3.0], [3.0, 3.0]])  # sum of outer products / (N - 1)


def test_inception_score_extremes():
    # Confident predictions spread uniformly over K classes: KL = log K for every x, IS = K.
    assert gen.inception_score(np.eye(10)[np.arange(50) % 10]) == pytest.approx(10.0, rel=1e-9)
    # The same prediction for every x: p(y|x) = p(y), KL = 0, IS = 1 (confident or not).
    assert gen.inception_score(np.tile(np.eye(10)[3], (20, 1))) == pytest.approx(1.0)
    assert gen.inception_score(np.tile(np.full(10, 0.1), (20, 1))) == pytest.approx(1.0)
    # Two equally used classes, each predicted with certainty: IS = 2.
    assert gen.inception_score(np.eye(4)[[0, 1, 0, 1]]) == pytest.approx(2.0)


def test_shipped_classifier_classifies_mnist_and_scores_real_data_as_real():
    gen.load_classifier()
    assert gen.weights_path().stat().st_size < 1_000_000  # ships inside the package in < 1 MB
    data = vaekit.open_data(vaekit.DataConfig(limit=1200, test_limit=200))  # 1200 train, 200 test images
    feats, probs = gen.classify(data.test.x)
    assert feats.shape == (200, gen.FEATURES) and probs.shape == (200, 10)
    assert (probs.argmax(1) == data.test.y.numpy()).mean() >= 0.97
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-9)
    # Real digits: IS near 10 (confident, all classes used); FID of real vs real far below noise.
    ref = gen.Reference(data.test.x)
    real = ref.score(data.train.x[:200])
    noise = ref.score(torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    assert real["is"] > 7.0 and noise["is"] < real["is"]
    assert real["fid"] < noise["fid"] / 10


def test_supports_only_28x28_grey_ten_classes():
    assert gen.supports((1, 28, 28)) is None
    assert "28x28" in gen.supports((1, 8, 8))
    assert "28x28" in gen.supports((3, 28, 28))
    assert "10-class" in gen.supports((1, 28, 28), n_classes=2)
