"""The Universal Scalability Law, fitted to throughput measured at several concurrencies.

    X(N) = lambda * N / (1 + sigma * (N - 1) + kappa * N * (N - 1))

``lambda`` is the throughput of one user, ``sigma`` the cost of contention (the serial
fraction: Amdahl's law when kappa is 0) and ``kappa`` the cost of coherence (crosstalk
between users, which makes throughput fall past a peak at N* = sqrt((1 - sigma) / kappa)).
The fit is bounded non-linear least squares (Levenberg-Marquardt, projected onto
sigma in [0, 1], kappa >= 0, lambda > 0); standard errors come from the Jacobian at the
solution, and N*'s interval from the delta method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from redline.core import RunResult

__all__ = ["MIN_USL_POINTS", "UslFit", "UslPoint", "fit_usl"]

MIN_USL_POINTS = 6
"""Fewer concurrency levels than this cannot support three parameters and their errors."""

_Z95 = 1.959963984540054
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class UslPoint:
    """Throughput ``throughput`` (req/s) measured with ``concurrency`` users."""

    concurrency: float
    throughput: float

    @classmethod
    def from_run(cls, run: RunResult) -> UslPoint:
        """The point of a stored closed-model run: its users and measured throughput.

        Raises:
            ValueError: the run's load was not a constant number of virtual users.
        """
        load = run.plan.load
        if load.model != "closed" or load.vus is None:
            raise ValueError(f"run {run.id} did not run a constant number of virtual users")
        return cls(float(load.vus), run.total().rps)


@dataclass(frozen=True)
class UslFit:
    """The fitted law and how much to trust it.

    Attributes:
        sigma, kappa, lam: the parameters (``lam`` is lambda, req/s of one user).
        sigma_se, kappa_se, lam_se: their standard errors.
        peak: N*, the concurrency of the highest throughput (inf when kappa is 0).
        peak_low, peak_high: N*'s 95% interval (delta method), None when unbounded.
        peak_throughput: X(N*), the most throughput the law allows.
        r_squared: the share of the throughput's variance the law explains.
        rmse: the root mean square residual, req/s.
        points: the measurements fitted.
    """

    sigma: float
    kappa: float
    lam: float
    sigma_se: float
    kappa_se: float
    lam_se: float
    peak: float
    peak_low: float | None
    peak_high: float | None
    peak_throughput: float
    r_squared: float
    rmse: float
    points: tuple[UslPoint, ...]

    def throughput(self, concurrency: float) -> float:
        """X(N): the throughput the law predicts with ``concurrency`` users."""
        return float(
            _model(np.array([self.sigma, self.kappa, self.lam]), np.array([concurrency]))[0]
        )

    def to_dict(self) -> dict[str, object]:
        """The JSON form."""
        return {
            "sigma": self.sigma,
            "kappa": self.kappa,
            "lambda": self.lam,
            "sigma_se": self.sigma_se,
            "kappa_se": self.kappa_se,
            "lambda_se": self.lam_se,
            "peak": None if math.isinf(self.peak) else self.peak,
            "peak_low": self.peak_low,
            "peak_high": self.peak_high,
            "peak_throughput": self.peak_throughput,
            "r_squared": self.r_squared,
            "rmse": self.rmse,
            "points": [[p.concurrency, p.throughput] for p in self.points],
        }


def _model(params: FloatArray, n: FloatArray) -> FloatArray:
    sigma, kappa, lam = params
    result: FloatArray = lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))
    return result


def _jacobian(params: FloatArray, n: FloatArray) -> FloatArray:
    sigma, kappa, lam = params
    d = 1 + sigma * (n - 1) + kappa * n * (n - 1)
    x = lam * n / d
    return np.column_stack([-x * (n - 1) / d, -x * n * (n - 1) / d, n / d])


def _project(params: FloatArray) -> FloatArray:
    return np.array([min(max(params[0], 0.0), 1.0), max(params[1], 0.0), max(params[2], 1e-12)])


def fit_usl(points: Sequence[UslPoint] | Sequence[tuple[float, float]]) -> UslFit:
    """Fit the USL to ``points`` (``UslPoint`` or ``(concurrency, throughput)`` pairs).

    Raises:
        ValueError: fewer than :data:`MIN_USL_POINTS` distinct concurrencies, or a
            concurrency below 1 or a throughput that is not positive.
    """
    pts = tuple(
        p if isinstance(p, UslPoint) else UslPoint(float(p[0]), float(p[1])) for p in points
    )
    levels = {p.concurrency for p in pts}
    if len(levels) < MIN_USL_POINTS:
        raise ValueError(
            f"the USL needs at least {MIN_USL_POINTS} concurrency levels to fit three "
            f"parameters with errors; got {len(levels)}"
        )
    if any(p.concurrency < 1 or not p.throughput > 0 for p in pts):
        raise ValueError("every point needs a concurrency >= 1 and a positive throughput")
    n = np.array([p.concurrency for p in pts], dtype=np.float64)
    x = np.array([p.throughput for p in pts], dtype=np.float64)
    params = _start(n, x)
    params = _levenberg_marquardt(params, n, x)
    residuals = x - _model(params, n)
    dof = max(len(pts) - 3, 1)
    s2 = float(residuals @ residuals) / dof
    jac = _jacobian(params, n)
    cov = np.asarray(s2 * np.linalg.pinv(jac.T @ jac), dtype=np.float64)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    sigma, kappa, lam = (float(v) for v in params)
    peak, low, high = _peak(sigma, kappa, cov)
    total = float(((x - x.mean()) ** 2).sum())
    best = peak if math.isfinite(peak) else float(n.max())
    return UslFit(
        sigma=sigma,
        kappa=kappa,
        lam=lam,
        sigma_se=float(se[0]),
        kappa_se=float(se[1]),
        lam_se=float(se[2]),
        peak=peak,
        peak_low=low,
        peak_high=high,
        peak_throughput=float(_model(params, np.array([best]))[0]),
        r_squared=1.0 - float(residuals @ residuals) / total if total > 0 else 1.0,
        rmse=math.sqrt(float(residuals @ residuals) / len(pts)),
        points=pts,
    )


def _start(n: FloatArray, x: FloatArray) -> FloatArray:
    """A first guess: lambda from the smallest concurrency, sigma and kappa by linear fit.

    With lambda known, N * lambda / X - 1 = sigma (N - 1) + kappa N (N - 1) is linear.
    """
    lam = float(np.max(x[n == n.min()] / n.min()))
    y = n * lam / x - 1
    design = np.column_stack([n - 1, n * (n - 1)])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return _project(np.array([coef[0], coef[1], lam]))


def _levenberg_marquardt(params: FloatArray, n: FloatArray, x: FloatArray) -> FloatArray:
    damping = 1e-3
    cost = float(((x - _model(params, n)) ** 2).sum())
    for _ in range(500):
        jac = _jacobian(params, n)
        residuals = x - _model(params, n)
        normal = jac.T @ jac
        gradient = jac.T @ residuals
        scale = np.diag(np.diag(normal)) + 1e-12 * np.eye(3)
        try:
            step = np.linalg.solve(normal + damping * scale, gradient)
        except np.linalg.LinAlgError:
            damping *= 10
            continue
        trial = _project(params + step)
        trial_cost = float(((x - _model(trial, n)) ** 2).sum())
        if trial_cost < cost:
            converged = cost - trial_cost <= 1e-12 * max(cost, 1e-30)
            params, cost = trial, trial_cost
            damping = max(damping / 10, 1e-12)
            if converged or np.allclose(step, 0, atol=1e-15):
                break
        else:
            damping *= 10
            if damping > 1e12:
                break
    return params


def _peak(sigma: float, kappa: float, cov: FloatArray) -> tuple[float, float | None, float | None]:
    if kappa <= 0:
        return math.inf, None, None
    peak = math.sqrt((1 - sigma) / kappa)
    # d N*/d sigma = -1 / (2 kappa N*), d N*/d kappa = -N* / (2 kappa)
    grad = np.array([-1 / (2 * kappa * peak), -peak / (2 * kappa), 0.0])
    se = math.sqrt(max(float(grad @ cov @ grad), 0.0))
    low = max(peak - _Z95 * se, 1.0)
    return peak, low, peak + _Z95 * se
