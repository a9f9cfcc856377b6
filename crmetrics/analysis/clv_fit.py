"""The bgnbd branch of clv: fit both models to the SQL summary and predict per customer.

Kept apart from `clv.py` so that numpy and scipy are touched only here (through `clv_models.numeric`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from crmetrics.analysis import clv_models as models
from crmetrics.analysis.base import AnalysisContext, AnalysisResult, Figure
from crmetrics.result import Result

if TYPE_CHECKING:
    from crmetrics.analysis.clv import Setup

MIN_REPEAT_BUYERS = 50  # below this the Gamma-Gamma fit is flagged as unreliable
MAX_CORRELATION = 0.3  # Gamma-Gamma assumes spend independent of frequency
CUSTOMER_COLUMNS = ("p_alive", "expected_purchases", "expected_spend", "clv")


def _floats(values: Any) -> list[float | None]:
    np, _, _ = models.numeric()
    boxed = values.astype(object)
    boxed[~np.isfinite(values)] = None
    return boxed.tolist()


def bgnbd_result(ctx: AnalysisContext, setup: Setup, as_of: dt.date, summary: Result) -> AnalysisResult:
    """Tables parameters, customers and summary; warnings in the summary row and in the notes."""
    np, _, _ = models.numeric()
    cols = {name: summary.column(name) for name in summary.columns}
    x = np.asarray(cols["frequency"], dtype=float)
    t_x = np.asarray(cols["recency"], dtype=float)
    T = np.asarray(cols["T"], dtype=float)
    m = np.asarray([np.nan if v is None else v for v in cols["monetary"]], dtype=float)
    warnings: list[str] = []
    parameters: list[tuple] = []
    n = len(x)
    purchases = spend = alive = np.full(n, np.nan)
    fits: dict[str, models.Fit | None] = {"bgnbd": None, "gamma_gamma": None}
    if n == 0:
        warnings.append("no customers with purchases up to as_of: nothing to fit")
    elif not np.any(x > 0):
        warnings.append("no repeat purchases: the BG/NBD model cannot be fitted")
    else:
        fits["bgnbd"] = bg = models.fit_bgnbd(x, t_x, T)
        if not bg.converged:
            warnings.append(f"the BG/NBD fit did not converge: {bg.message}")
        alive = models.p_alive(bg.params, x, t_x, T)
        purchases, clv_weights = _horizon(setup, bg.params, x, t_x, T)
        fits["gamma_gamma"] = gg = _gamma_gamma(x, m, warnings)
        if gg is not None:
            spend = models.expected_spend(gg.params, x, m)
            if gg.params["q"] <= 1:
                warnings.append("Gamma-Gamma q <= 1: the population mean spend is infinite; no spend without history")
            if not gg.converged:
                warnings.append(f"the Gamma-Gamma fit did not converge: {gg.message}")
    for model, fitted in fits.items():
        names = models.BGNBD if model == "bgnbd" else models.GAMMA_GAMMA
        for name in names:
            value = fitted.params[name] if fitted else None
            parameters.append((name, value, fitted.std_errors[name] if fitted else None, model))
    clv = spend * setup.margin * clv_weights if fits["bgnbd"] is not None else np.full(n, np.nan)
    rows = list(
        zip(
            *(summary.column(c) for c in summary.columns),
            *(_floats(v) for v in (alive, purchases, spend, clv)),
            strict=True,
        )
    )
    customers = Result([*summary.columns, *CUSTOMER_COLUMNS], rows)
    totals = _totals(setup, as_of, x, cols["revenue"], alive, purchases, clv, fits, warnings)
    result = AnalysisResult("clv", ctx.name, "Customer lifetime value (BG/NBD + Gamma-Gamma)")
    result.tables = {
        "parameters": Result(["parameter", "value", "std_error", "model"], parameters),
        "customers": customers,
        "summary": Result(list(totals), [tuple(totals.values())]),
    }
    result.figures = [
        Figure("total_clv", "Total CLV", totals["total_clv"], "currency"),
        Figure("mean_clv", "Average CLV", totals["mean_clv"], "currency"),
        Figure("mean_p_alive", "Average probability alive", totals["mean_p_alive"], "percent"),
        Figure("customers", "Customers", n, "integer"),
    ]
    result.notes = warnings
    result.charts = [chart()]
    return result


def _horizon(setup: Setup, params: dict[str, float], x: Any, t_x: Any, T: Any) -> tuple[Any, Any]:
    """Expected purchases over the horizon, and the discounted purchases (the sum of each step's discounted share)."""
    np, _, _ = models.numeric()
    previous = np.zeros(len(x))
    discounted = np.zeros(len(x))
    for _, end, factor in setup.discounts():
        current = models.expected_purchases(params, end, x, t_x, T)
        discounted += (current - previous) * factor
        previous = current
    return previous, discounted


def _gamma_gamma(x: Any, m: Any, warnings: list[str]) -> models.Fit | None:
    """Fit the spend model on repeat buyers with a positive mean repeat spend; warn about its assumptions."""
    np, _, _ = models.numeric()
    repeat = (x > 0) & np.isfinite(m)
    usable = repeat & (m > 0)
    if int(np.sum(repeat & ~usable)):
        warnings.append(
            f"{int(np.sum(repeat & ~usable))} repeat buyer(s) with zero or negative spend left out of Gamma-Gamma"
        )
    count = int(np.sum(usable))
    if count < 2:
        warnings.append(f"only {count} repeat buyer(s) with spend: the Gamma-Gamma model cannot be fitted")
        return None
    if count < MIN_REPEAT_BUYERS:
        warnings.append(f"too few repeat buyers ({count} < {MIN_REPEAT_BUYERS}): the spend model is unreliable")
    correlation = float(np.corrcoef(x[usable], m[usable])[0, 1]) if count > 2 else 0.0
    if np.isfinite(correlation) and abs(correlation) >= MAX_CORRELATION:
        warnings.append(
            f"monetary value is correlated with frequency (r = {correlation:.2f}); Gamma-Gamma assumes independence"
        )
    return models.fit_gamma_gamma(x[usable], m[usable])


def _totals(
    setup: Setup,
    as_of: dt.date,
    x: Any,
    revenue: list[Any],
    alive: Any,
    purchases: Any,
    clv: Any,
    fits: dict[str, models.Fit | None],
    warnings: list[str],
) -> dict[str, Any]:
    np, _, _ = models.numeric()
    bg, gg = fits["bgnbd"], fits["gamma_gamma"]

    def total(values: Any) -> float | None:
        finite = values[np.isfinite(values)]
        return float(finite.sum()) if len(finite) else None

    def mean(values: Any) -> float | None:
        finite = values[np.isfinite(values)]
        return float(finite.mean()) if len(finite) else None

    return {
        "customers": len(x),
        "repeat_buyers": int(np.sum(x > 0)),
        "observed_revenue": float(sum(v for v in revenue if v is not None)),
        "expected_purchases": total(purchases),
        "total_clv": total(clv),
        "mean_clv": mean(clv),
        "mean_p_alive": mean(alive),
        "bgnbd_converged": bg.converged if bg else None,
        "bgnbd_log_likelihood": bg.log_likelihood if bg else None,
        "gamma_gamma_converged": gg.converged if gg else None,
        "gamma_gamma_log_likelihood": gg.log_likelihood if gg else None,
        "as_of": as_of,
        "time_unit": setup.unit,
        "horizon": setup.horizon,
        "discount_rate": setup.discount_rate,
        "margin": setup.margin,
        "warnings": "; ".join(warnings),
    }


def chart() -> dict[str, Any]:
    """A histogram of the customers' CLV."""
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Distribution of customer lifetime value",
        "data": {"name": "customers"},
        "mark": "bar",
        "encoding": {
            "x": {"field": "clv", "type": "quantitative", "bin": {"maxbins": 30}},
            "y": {"aggregate": "count", "type": "quantitative"},
        },
    }
