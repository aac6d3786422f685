"""Reconstruction errors, the linear probe and kNN accuracy against known answers."""

import math

import numpy as np
import pytest
import torch

from vaekit.metrics.probes import knn_accuracy, linear_probe, reconstruction_errors


def test_reconstruction_errors_by_hand():
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0]])  # (N=2, P=4)
    r = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.0, 0.5, 1.0, 0.5]])
    out = reconstruction_errors(x, r, eps=1e-6)
    # Squared errors: image 1 = 4 * 0.25 = 1; image 2 = 0.25 + 0.25 = 0.5.
    assert out["mse"] == pytest.approx(0.75)
    assert out["mse_pixel"] == pytest.approx(0.75 / 4)
    # BCE: image 1 = 4 log 2; image 2 = 2 log 2 + two exact pixels clamped to 1 - eps: -2 log(1 - eps).
    bce2 = 2 * math.log(2) - 2 * math.log(1 - 1e-6)
    assert out["bce"] == pytest.approx((4 * math.log(2) + bce2) / 2, rel=1e-9)


def test_bce_stays_finite_for_outputs_outside_the_unit_interval():
    x = torch.tensor([[1.0, 0.0]])
    out = reconstruction_errors(x, torch.tensor([[-0.3, 1.2]]), eps=1e-6)  # a linear decoder's overshoot
    # Both pixels are clamped to the wrong end: -log(eps) each.
    assert out["bce"] == pytest.approx(-2 * math.log(1e-6), rel=1e-6)
    assert out["mse"] == pytest.approx(1.3**2 + 1.2**2)


def test_probes_read_labels_that_are_the_codes():
    rng = np.random.default_rng(0)
    y_train, y_test = rng.integers(0, 10, 500), rng.integers(0, 10, 200)
    onehot = np.eye(10)
    assert linear_probe(onehot[y_train], y_train, onehot[y_test], y_test) == 1.0
    assert knn_accuracy(onehot[y_train], y_train, onehot[y_test], y_test, k=5) == 1.0
    # The label itself as a 1-D code: separable by a line for kNN; ordinal for the linear model.
    codes_tr, codes_te = y_train[:, None].astype(float), y_test[:, None].astype(float)
    assert knn_accuracy(codes_tr, y_train, codes_te, y_test, k=3) == 1.0


def test_probes_on_noise_are_at_chance():
    rng = np.random.default_rng(1)
    y_train, y_test = rng.integers(0, 10, 2000), rng.integers(0, 10, 2000)
    z_train, z_test = rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8))
    # Chance is 0.1; the standard error of an accuracy on 2000 examples is ~0.0067.
    assert abs(linear_probe(z_train, y_train, z_test, y_test) - 0.1) < 0.04
    assert abs(knn_accuracy(z_train, y_train, z_test, y_test, k=5) - 0.1) < 0.04


def test_knn_uses_k_neighbours():
    # Test point 0 has 1 neighbour of class 1 at distance 0.1 and 2 of class 0 at distance 1:
    # k = 1 says 1, k = 3 says 0.
    train = np.array([[0.1], [1.0], [-1.0]])
    y = np.array([1, 0, 0])
    assert knn_accuracy(train, y, np.array([[0.0]]), np.array([1]), k=1) == 1.0
    assert knn_accuracy(train, y, np.array([[0.0]]), np.array([1]), k=3) == 0.0
