"""Autocorrelation and cross-correlation of sequences, computed with the FFT.

"A sequence correlated with itself" is its autocorrelation function (ACF): the correlation of
``x[t]`` with ``x[t + k]`` for each lag ``k``. The direct sum costs O(n * max_lag); the FFT gives
every lag in O(n log n). The FFT computes a *circular* correlation, so the series is padded
with zeros to at least ``2n - 1`` points: without the padding, the end of the series wraps
around onto its start and every lag is wrong.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from corrlib._lazy import lazy_import
from corrlib._validation import (
    as_data,
    check_lag,
    check_min_samples,
    check_ndim,
    check_same_length,
    constant_columns,
)
from corrlib._warnings import ConstantInputWarning, constant_input_message, warn

__all__ = ["autocorr", "crosscorr", "estimate_lag"]

scipy = lazy_import("scipy")  # scipy.fft is imported on the first FFT, not with corrlib


def _fft_length(n: int) -> int:
    """A fast FFT size that holds a linear (not circular) correlation of length n: >= 2n - 1."""
    return scipy.fft.next_fast_len(2 * n - 1, real=True)


def _cross_spectrum_inverse(a: torch.Tensor, b: torch.Tensor | None, nfft: int) -> torch.Tensor:
    """``irfft(conj(rfft(a)) * rfft(b))`` along dim 0 with zero padding to ``nfft`` points.

    With ``b=None`` it is the autocovariance sum of ``a``. On the CPU (without autograd) this
    uses scipy's pocketfft, several times faster than ``torch.fft`` there; elsewhere, and when
    gradients are needed, ``torch.fft``.
    """
    needs_grad = a.requires_grad or (b is not None and b.requires_grad)
    if a.device.type == "cpu" and not needs_grad:
        fa = scipy.fft.rfft(a.numpy(), n=nfft, axis=0)
        if b is None:
            spectrum = fa.real**2 + fa.imag**2
        else:
            spectrum = fa.conj() * scipy.fft.rfft(b.numpy(), n=nfft, axis=0)
        return torch.from_numpy(scipy.fft.irfft(spectrum, n=nfft, axis=0)).to(a.dtype)
    fa = torch.fft.rfft(a, n=nfft, dim=0)
    if b is None:
        return torch.fft.irfft(fa.real**2 + fa.imag**2, n=nfft, dim=0)
    return torch.fft.irfft(fa.conj() * torch.fft.rfft(b, n=nfft, dim=0), n=nfft, dim=0)


def _series(x: Any, name: str, allow_2d: bool) -> tuple[torch.Tensor, torch.dtype]:
    """The series in its compute dtype, and the result dtype."""
    t, out_dtype = as_data(x, name)
    if not (t.ndim == 1 or (allow_2d and t.ndim == 2)):
        check_ndim(t, 1, name)
    check_min_samples(t, 2, name)
    return t, out_dtype


def _default_max_lag(n: int) -> int:
    """The default largest lag for a series of ``n`` points: ``min(10 log10(n), n - 1)``, as
    statsmodels' ``acf`` (its ``nlags`` default), rounded down."""
    return min(int(10 * math.log10(n)), n - 1)


def _constant(t: torch.Tensor, name: str, statistic: str) -> torch.Tensor:
    """Which series (columns) are exactly constant, with a warning if any is."""
    constant = constant_columns(t)
    if bool(constant.any()):
        warn(constant_input_message(name, statistic), ConstantInputWarning)
    return constant


def autocorr(x: Any, max_lag: int | None = None, *, adjusted: bool = False) -> torch.Tensor:
    """Autocorrelation function of a series (or of each column of a matrix), via the FFT.

    Equal to ``statsmodels.tsa.stattools.acf(x, nlags=max_lag, adjusted=adjusted, fft=True)``.

    Parameters
    ----------
    x : tensor or array, shape ``(n,)`` or ``(n, d)``
        The series (time runs along the first dimension); ``n >= 2``.
    max_lag : int, optional
        Largest lag, ``0 <= max_lag <= n - 1``. Default: ``min(10 log10(n), n - 1)``, as in
        statsmodels.
    adjusted : bool
        Divide the lag-``k`` autocovariance by ``n - k`` instead of ``n``. The default (``n``)
        gives the usual biased estimator, whose ACF is positive semi-definite.

    Returns
    -------
    Tensor, shape ``(max_lag + 1,)`` or ``(max_lag + 1, d)``
        ACF at lags ``0 .. max_lag``; entry 0 is 1. A constant series gives NaN and a
        :class:`~corrlib.ConstantInputWarning`.

    Examples
    --------
    >>> import torch, corrlib
    >>> corrlib.autocorr(torch.tensor([1.0, 2.0, 3.0, 4.0]), max_lag=2)
    tensor([ 1.0000,  0.2500, -0.3000])
    """
    t, out_dtype = _series(x, "x", allow_2d=True)
    n = t.shape[0]
    max_lag = _default_max_lag(n) if max_lag is None else check_lag(max_lag, n)
    constant = _constant(t, "x", "autocorrelation")
    centred = t - t.mean(dim=0)
    nfft = _fft_length(n)
    acov = _cross_spectrum_inverse(centred, None, nfft)[: max_lag + 1]
    if adjusted:
        divisor = torch.arange(n, n - max_lag - 1, -1, dtype=t.dtype, device=t.device)
        acov = acov / (divisor if t.ndim == 1 else divisor[:, None])
    else:
        acov = acov / n
    acf = acov / acov[:1]
    acf = torch.where(constant, torch.full_like(acf, float("nan")), acf)
    return acf.to(out_dtype)


def crosscorr(x: Any, y: Any, max_lag: int | None = None) -> torch.Tensor:
    """Normalised cross-correlation of two series at lags ``-max_lag .. max_lag``.

    Entry ``i`` of the result belongs to lag ``k = i - max_lag`` and is

    ``sum_t (x[t] - mean_x) (y[t + k] - mean_y) / (n * std_x * std_y)``

    (population standard deviations; the sum runs over the ``n - |k|`` overlapping points), so
    lag 0 is Pearson's r. A positive lag means that ``y`` follows ``x``: if ``y[t] = x[t - D]``
    the peak is at ``k = D``. Swapping ``x`` and ``y`` mirrors the result.

    Parameters
    ----------
    x, y : tensor or array, shape ``(n,)``
    max_lag : int, optional
        ``0 <= max_lag <= n - 1``. Default: ``min(10 log10(n), n - 1)`` (rounded down), the
        default number of lags of :func:`autocorr` and of statsmodels' ``acf`` and ``ccf``
        plots; pass ``n - 1`` for every lag.

    Returns
    -------
    Tensor, shape ``(2 * max_lag + 1,)``
    """
    return _crosscorr(x, y, max_lag)


def _crosscorr(x: Any, y: Any, max_lag: Any) -> torch.Tensor:
    xt, x_dtype = _series(x, "x", allow_2d=False)
    yt, y_dtype = _series(y, "y", allow_2d=False)
    check_same_length(xt, yt)
    out_dtype = torch.promote_types(x_dtype, y_dtype)
    work = torch.promote_types(xt.dtype, yt.dtype)
    xt, yt = xt.to(work), yt.to(work)
    n = xt.shape[0]
    max_lag = _default_max_lag(n) if max_lag is None else check_lag(max_lag, n)
    constant = bool(_constant(xt, "x", "cross-correlation"))
    constant |= bool(_constant(yt, "y", "cross-correlation"))
    xc, yc = xt - xt.mean(), yt - yt.mean()
    nfft = _fft_length(n)
    cross = _cross_spectrum_inverse(xc, yc, nfft)
    # Index k holds lag k for k >= 0; negative lags wrap around to the end.
    lags = torch.cat([cross[nfft - max_lag :], cross[: max_lag + 1]]) if max_lag else cross[:1]
    scale = torch.sqrt((xc * xc).sum() * (yc * yc).sum())
    out = lags / scale
    if constant:
        out = torch.full_like(out, float("nan"))
    return out.to(out_dtype)


def estimate_lag(x: Any, y: Any, max_lag: int | None = None) -> int:
    """The lag at which ``y`` best matches ``x``: the argmax of :func:`crosscorr`.

    Sign convention: a positive result ``D`` means ``y`` lags behind ``x`` by ``D`` samples
    (``y[t] ~ x[t - D]``); ``estimate_lag(y, x)`` is then ``-D``.

    Parameters
    ----------
    x, y : tensor or array, shape ``(n,)``
    max_lag : int, optional
        Search lags ``-max_lag .. max_lag``; default ``n - 1`` (all of them).

    Returns
    -------
    int
    """
    xt, _ = _series(x, "x", allow_2d=False)
    max_lag = xt.shape[0] - 1 if max_lag is None else max_lag
    c = _crosscorr(xt, y, max_lag)
    if bool(torch.isnan(c).all()):
        raise ValueError("the lag is undefined: a series is constant or holds NaN")
    return int(torch.nan_to_num(c, nan=-math.inf).argmax()) - max_lag
