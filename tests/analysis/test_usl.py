"""The Universal Scalability Law fit: parameters recovered, errors honest, bad input named."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from redline.analysis import MIN_USL_POINTS, UslPoint, fit_usl
from synthetic import synthetic_run

LEVELS = np.array([1, 2, 4, 8, 16, 24, 32, 48, 64], dtype=float)


def usl(n: np.ndarray, sigma: float, kappa: float, lam: float) -> np.ndarray:
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


@pytest.mark.parametrize(
    ("sigma", "kappa", "lam"),
    [(0.05, 0.002, 100.0), (0.1, 0.0005, 50.0), (0.03, 0.0015, 2000.0)],
)
@pytest.mark.parametrize("seed", range(5))
def test_sigma_and_kappa_come_back_within_20_percent_through_3_percent_noise(
    sigma: float, kappa: float, lam: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    n = np.repeat(LEVELS, 3)  # a sweep measures each level three times
    x = usl(n, sigma, kappa, lam) * (1 + rng.normal(0, 0.03, n.size))
    fit = fit_usl(list(zip(n, x, strict=True)))
    assert fit.sigma == pytest.approx(sigma, rel=0.2)
    assert fit.kappa == pytest.approx(kappa, rel=0.2)
    assert fit.lam == pytest.approx(lam, rel=0.1)
    true_peak = math.sqrt((1 - sigma) / kappa)
    assert fit.peak_low is not None
    assert fit.peak_high is not None
    assert fit.peak_low < fit.peak < fit.peak_high
    assert fit.peak == pytest.approx(true_peak, rel=0.2)
    assert fit.r_squared > 0.9
    assert fit.peak_throughput == pytest.approx(fit.throughput(fit.peak))


def test_exact_points_are_fitted_exactly() -> None:
    x = usl(LEVELS, 0.08, 0.001, 300.0)
    fit = fit_usl(list(zip(LEVELS, x, strict=True)))
    assert fit.sigma == pytest.approx(0.08, rel=1e-4)
    assert fit.kappa == pytest.approx(0.001, rel=1e-4)
    assert fit.rmse < 1e-6 * 300


def test_linear_scaling_has_no_peak() -> None:
    x = 40.0 * LEVELS
    fit = fit_usl(list(zip(LEVELS, x, strict=True)))
    assert fit.sigma == pytest.approx(0.0, abs=1e-6)
    assert fit.kappa == pytest.approx(0.0, abs=1e-9)
    assert math.isinf(fit.peak)
    assert fit.peak_low is None


def test_fewer_than_six_levels_cannot_be_fitted() -> None:
    points = [(n, 10.0 * n) for n in (1, 2, 4, 8, 16)]
    with pytest.raises(ValueError, match=f"at least {MIN_USL_POINTS} concurrency levels"):
        fit_usl(points * 3)  # repeats of five levels are still five levels


def test_nonsense_points_are_refused() -> None:
    with pytest.raises(ValueError, match="positive throughput"):
        fit_usl([(n, 0.0 if n == 4 else 10.0 * n) for n in (1, 2, 4, 8, 16, 32)])


def test_a_stored_closed_model_run_is_a_point() -> None:
    run = synthetic_run(1, intervals=5, rate=300)
    closed = dataclasses.replace(run, plan={"name": "x", "load": {"model": "closed", "vus": 8}})
    assert UslPoint.from_run(closed) == UslPoint(8.0, run.total().rps)
    with pytest.raises(ValueError, match="constant number of virtual users"):
        UslPoint.from_run(run)
