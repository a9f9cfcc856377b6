"""Maximum-likelihood fits of the BG/NBD purchase model and the Gamma-Gamma spend model, and their predictions.

References: Fader, Hardie & Lee, "Counting your customers the easy way: an alternative to the Pareto/NBD model"
(Marketing Science, 2005) and "RFM and CLV: using iso-value curves for customer base analysis" (JMR, 2005).
Parameters are fitted on the log scale (so they stay positive) with L-BFGS-B and the analytic gradient; standard
errors come from the inverse of the numerically differentiated Hessian of the total log-likelihood.

numpy and scipy are an optional extra (`pip install 'crmetrics[clv]'`), imported only when a model is fitted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crmetrics.errors import AnalysisError

BGNBD = ("r", "alpha", "a", "b")
GAMMA_GAMMA = ("p", "q", "gamma")
_LOG_BOUNDS = (-20.0, 25.0)  # e^-20 .. e^25: wide enough for any time unit and currency


def numeric() -> tuple[Any, Any, Any]:
    """numpy, scipy.special and scipy.optimize, or an error that names the extra to install."""
    try:
        import numpy as np
        from scipy import optimize, special
    except ImportError:
        raise AnalysisError(
            "clv with model: bgnbd needs numpy and scipy; install them with: pip install 'crmetrics[clv]'"
        ) from None
    return np, special, optimize


@dataclass(frozen=True)
class Fit:
    """A fitted model: parameter values and standard errors by name, the total log-likelihood and convergence."""

    params: dict[str, float]
    std_errors: dict[str, float | None]
    log_likelihood: float
    converged: bool
    message: str


def bgnbd_terms(theta: Any, x: Any, t_x: Any, T: Any) -> tuple[Any, Any]:
    """Per-customer log-likelihood of the BG/NBD model and its gradient with respect to (r, alpha, a, b)."""
    np, special, _ = numeric()
    r, alpha, a, b = theta
    repeat = x > 0
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    bx1 = np.where(repeat, b + x - 1, 1.0)  # only used where x > 0
    a4 = np.where(repeat, np.log(a) - np.log(bx1) - (r + x) * np.log(alpha + t_x), -np.inf)
    top = np.maximum(a3, a4)
    mix = np.log(np.exp(a3 - top) + np.exp(a4 - top)) + top
    w3 = np.exp(a3 - mix)  # share of the "still alive" branch
    w4 = 1.0 - w3
    dr = special.digamma(r + x) - special.digamma(r) + np.log(alpha) - w3 * np.log(alpha + T)
    dr -= w4 * np.log(alpha + t_x)
    dalpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
    da = special.digamma(a + b) - special.digamma(a + b + x) + np.where(repeat, w4 / a, 0.0)
    db = special.digamma(a + b) + special.digamma(b + x) - special.digamma(b) - special.digamma(a + b + x)
    db -= np.where(repeat, w4 / bx1, 0.0)
    return a1 + a2 + mix, np.stack([dr, dalpha, da, db])


def gamma_gamma_terms(theta: Any, x: Any, m: Any) -> tuple[Any, Any]:
    """Per-customer log-likelihood of the Gamma-Gamma model of mean spend m over x purchases, and its gradient."""
    np, special, _ = numeric()
    p, q, gamma = theta
    px = p * x
    log_xm = np.log(x * m + gamma)
    ll = special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(gamma)
    ll += (px - 1) * np.log(m) + px * np.log(x) - (px + q) * log_xm
    dp = x * (special.digamma(px + q) - special.digamma(px) + np.log(m) + np.log(x) - log_xm)
    dq = special.digamma(px + q) - special.digamma(q) + np.log(gamma) - log_xm
    dgamma = q / gamma - (px + q) / (x * m + gamma)
    return ll, np.stack([dp, dq, dgamma])


def fit(
    names: tuple[str, ...],
    terms: Callable[[Any], tuple[Any, Any]],
    weights: Any,
    start: list[float],
) -> Fit:
    """Maximise sum(weights * loglik) over log-parameters; the objective is the weighted mean, for conditioning."""
    np, _, optimize = numeric()
    total = float(weights.sum())

    def objective(log_theta: Any) -> tuple[float, Any]:
        theta = np.exp(log_theta)
        ll, grad = terms(theta)
        if not np.all(np.isfinite(ll)):
            return np.inf, np.zeros_like(log_theta)
        return -float(weights @ ll) / total, -(grad @ weights) * theta / total

    x0 = np.log(np.asarray(start, dtype=float))
    bounds = [_LOG_BOUNDS] * len(names)
    result = optimize.minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000})
    theta = np.exp(result.x)
    at_bound = bool(np.any(np.isclose(result.x, _LOG_BOUNDS[0]) | np.isclose(result.x, _LOG_BOUNDS[1])))
    message = str(result.message) + ("; a parameter hit its bound" if at_bound else "")
    errors = _std_errors(objective, result.x, total)
    return Fit(
        {n: float(v) for n, v in zip(names, theta, strict=True)},
        {n: (float(v * s) if s is not None else None) for n, v, s in zip(names, theta, errors, strict=True)},
        -float(result.fun) * total,
        bool(result.success) and not at_bound,
        message,
    )


def _std_errors(objective: Callable[[Any], tuple[float, Any]], log_theta: Any, total: float) -> list[float | None]:
    """Standard errors of the log-parameters: sqrt of the diagonal of the inverse Hessian of -loglik."""
    np, _, _ = numeric()
    k = len(log_theta)
    step = 1e-5
    hessian = np.zeros((k, k))
    for i in range(k):
        shift = np.zeros(k)
        shift[i] = step
        hessian[i] = (objective(log_theta + shift)[1] - objective(log_theta - shift)[1]) / (2 * step)
    hessian = (hessian + hessian.T) / 2 * total
    try:
        covariance = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return [None] * k
    variances = np.diag(covariance)
    return [float(np.sqrt(v)) if np.isfinite(v) and v > 0 else None for v in variances]


def fit_bgnbd(x: Any, t_x: Any, T: Any) -> Fit:
    """Fit r, alpha, a, b to per-customer (frequency, recency, T); identical customers are weighted, not repeated."""
    np, _, _ = numeric()
    rows, weights = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    ux, ut, uT = rows[:, 0], rows[:, 1], rows[:, 2]
    rate = max(float(np.mean(x)) / max(float(np.mean(T)), 1e-9), 1e-6)
    return fit(BGNBD, lambda theta: bgnbd_terms(theta, ux, ut, uT), weights.astype(float), [1.0, 1.0 / rate, 1.0, 1.0])


def fit_gamma_gamma(x: Any, m: Any) -> Fit:
    """Fit p, q, gamma to repeat buyers' (frequency, mean spend); every m must be positive."""
    np, _, _ = numeric()
    mean = float(np.mean(m))
    return fit(GAMMA_GAMMA, lambda theta: gamma_gamma_terms(theta, x, m), np.ones(len(x)), [1.0, 2.0, mean])


def p_alive(params: dict[str, float], x: Any, t_x: Any, T: Any) -> Any:
    """Probability that each customer is still active at T."""
    np, special, _ = numeric()
    r, alpha, a, b = (params[n] for n in BGNBD)
    repeat = x > 0
    bx1 = np.where(repeat, b + x - 1, 1.0)
    log_odds = np.log(a) - np.log(bx1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(repeat, special.expit(-log_odds), 1.0)


def expected_purchases(params: dict[str, float], t: float, x: Any, t_x: Any, T: Any) -> Any:
    """Expected number of purchases in (T, T + t] given each customer's history (FHL 2005, eq. 10)."""
    np, special, _ = numeric()
    r, alpha, a, b = (params[n] for n in BGNBD)
    if t <= 0:
        return np.zeros(len(x))
    repeat = x > 0
    bx1 = np.where(repeat, b + x - 1, 1.0)
    ratio = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
    hyper = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    head = (a + b + x - 1) / (a - 1) * (1 - ratio * hyper)
    odds = np.where(repeat, np.exp(np.log(a) - np.log(bx1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))), 0.0)
    return head / (1 + odds)


def expected_spend(params: dict[str, float], x: Any, m: Any) -> Any:
    """Expected mean spend per purchase: the Gamma-Gamma posterior mean; the population mean without history."""
    np, _, _ = numeric()
    p, q, gamma = (params[n] for n in GAMMA_GAMMA)
    known = (x > 0) & np.isfinite(m) & (m > 0)
    population = p * gamma / (q - 1) if q > 1 else np.nan
    safe_m = np.where(known, m, 0.0)
    return np.where(known, p * (gamma + x * safe_m) / (p * x + q - 1), population)
