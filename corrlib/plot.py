"""Plots for correlation matrices and autocorrelation functions.

Every function draws and returns the matplotlib object it drew on (an ``Axes`` or seaborn's
``ClusterGrid``) and never calls ``plt.show()``: the caller decides when a figure is shown or
saved. Inputs may be tensors (on any device, with or without gradients), numpy arrays, nested
lists or, for the matrix plots, pandas DataFrames (whose column names become the labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import torch

from corrlib._lazy import lazy_import
from corrlib._validation import (
    as_data,
    check_ndim,
    check_positive_int,
    check_square,
    check_symmetric,
)
from corrlib.inference import _level, normal_quantile

# Imported on first use (corrlib.plot itself is imported only when used).
plt = lazy_import("matplotlib.pyplot")
sns = lazy_import("seaborn")
pd = lazy_import("pandas")
hierarchy = lazy_import("scipy.cluster.hierarchy")
distance = lazy_import("scipy.spatial.distance")

__all__ = ["acf_band", "acf_plot", "corr_clustermap", "corr_heatmap", "use_course_style"]

#: The confidence bands :func:`acf_plot` can draw.
ACF_BANDS = ("bartlett", "white")

#: Figure settings shared by every notebook of the course: small, fixed-size PNG figures.
COURSE_RC: dict[str, Any] = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 80,
    "savefig.dpi": 80,
    "savefig.format": "png",
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "image.cmap": "viridis",
    "figure.constrained_layout.use": False,
}


def use_course_style(**overrides: Any) -> None:
    """Apply the course's figure style: fixed figure size and resolution, a clean look.

    The settings (:data:`COURSE_RC`) only touch ``matplotlib.rcParams`` and seaborn's theme,
    never the backend, so they are safe with the non-interactive Agg backend, in scripts and
    in Jupyter (where ``matplotlib.pyplot`` is imported first, so that the inline backend's own
    defaults cannot override them afterwards). Nothing is printed.

    Parameters
    ----------
    **overrides
        rcParams to set on top of the course style, e.g. ``{"figure.dpi": 100}`` passed as
        ``use_course_style(**{"figure.dpi": 100})``.
    """
    plt.get_backend()  # pyplot is imported first: it activates the backend before styling

    rc = {**COURSE_RC, **overrides}
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", rc=rc)
    mpl.rcParams.update(rc)


def corr_heatmap(
    C: Any,
    labels: Sequence[str] | None = None,
    ax: Any = None,
    *,
    mask_upper: bool = False,
    annot: bool = False,
    cmap: str = "RdBu_r",
    title: str | None = None,
    **kwargs: Any,
) -> Any:
    """Draw a correlation matrix as a heatmap with a diverging colour map centred on zero.

    The colour limits are fixed at -1 and 1, so that two heatmaps can be compared by eye, and
    being symmetric they put zero at the middle (white) of the diverging map. (seaborn's own
    ``center=`` argument is not needed for that and is left out.)

    Parameters
    ----------
    C : tensor, array or DataFrame, shape ``(d, d)``
        The correlation matrix. NaN entries (e.g. of a constant feature) are left blank.
    labels : sequence of str, optional
        Names of the ``d`` variables; by default a DataFrame's columns, else the tick numbers.
    ax : matplotlib Axes, optional
        Where to draw; by default a new figure of the current default size.
    mask_upper : bool
        Hide the strict upper triangle (the matrix is symmetric); the diagonal stays.
    annot : bool
        Write each value in its cell (two decimals unless ``fmt=`` is given).
    cmap : str
        A diverging colour map.
    title : str, optional
        Axes title.
    **kwargs
        Passed on to :func:`seaborn.heatmap`, overriding the defaults above.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn on.

    Raises
    ------
    ValueError
        If ``C`` is not a square 2-D matrix, or ``labels`` has the wrong length.
    """

    values, labels = _square_matrix(C, labels, "C")
    if ax is None:
        _, ax = plt.subplots()
    mask = np.triu(np.ones(values.shape, dtype=bool), k=1) if mask_upper else None
    options: dict[str, Any] = {
        "mask": mask,
        "cmap": cmap,
        "vmin": -1.0,
        "vmax": 1.0,
        "square": True,
        "annot": annot,
        "fmt": ".2f",
        "xticklabels": labels if labels is not None else "auto",
        "yticklabels": labels if labels is not None else "auto",
        "cbar_kws": {"shrink": 0.8, "label": "r"},
    }
    if annot:
        options["annot_kws"] = {"fontsize": 8}
    options.update(kwargs)
    sns.heatmap(values, ax=ax, **options)
    if title is not None:
        ax.set_title(title)
    return ax


def corr_clustermap(
    C: Any,
    labels: Sequence[str] | None = None,
    *,
    absolute: bool = True,
    method: str = "average",
    cmap: str = "RdBu_r",
    **kwargs: Any,
) -> Any:
    """Draw a correlation matrix with its variables reordered by hierarchical clustering.

    Variables are clustered on the distance ``1 - |r|`` (``absolute=True``: strongly
    anti-correlated variables carry the same information and land together) or on the
    correlation distance ``1 - r`` (``absolute=False``).

    Parameters
    ----------
    C : tensor, array or DataFrame, shape ``(d, d)``
        A symmetric correlation matrix without NaN, ``d >= 2``.
    labels : sequence of str, optional
        Names of the ``d`` variables (by default a DataFrame's columns, else numbers).
    absolute : bool
        Which distance to cluster on (see above).
    method : str
        Linkage method of :func:`scipy.cluster.hierarchy.linkage` (``"average"``,
        ``"complete"``, ``"single"``, ...); ``"ward"`` and ``"centroid"`` are meant for
        Euclidean data and are refused.
    cmap : str
        A diverging colour map; colour limits are fixed at -1 and 1, centred on 0.
    **kwargs
        Passed on to :func:`seaborn.clustermap` (``figsize`` defaults to 6.4 x 6.4 inches).

    Returns
    -------
    seaborn.matrix.ClusterGrid
        The grid; ``grid.ax_heatmap`` is the heatmap's Axes and
        ``grid.dendrogram_row.reordered_ind`` the new order of the variables.

    Raises
    ------
    ValueError
        If ``C`` is not square, has fewer than two variables, holds NaN or is not symmetric.
    """

    values, labels = _square_matrix(C, labels, "C")
    d = values.shape[0]
    if d < 2:
        raise ValueError(f"C needs at least 2 variables to cluster, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("C contains NaN or infinite values; they cannot be clustered")
    check_symmetric(torch.from_numpy(values), "C")
    if method in ("ward", "centroid", "median"):
        raise ValueError(f"method={method!r} needs Euclidean data; use 'average' or 'complete'")
    dist = 1.0 - (np.abs(values) if absolute else values)
    dist = np.clip((dist + dist.T) / 2.0, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    linkage = hierarchy.linkage(distance.squareform(dist, checks=False), method=method)
    names = list(labels) if labels is not None else list(range(d))
    frame = pd.DataFrame(values, index=names, columns=names)
    options: dict[str, Any] = {
        "row_linkage": linkage,
        "col_linkage": linkage,
        "cmap": cmap,
        "vmin": -1.0,
        "vmax": 1.0,
        "figsize": (6.4, 6.4),
        "cbar_kws": {"label": "r"},
    }
    options.update(kwargs)
    return sns.clustermap(frame, **options)


def acf_band(
    acf: Any,
    n: int,
    *,
    confidence_level: float = 0.95,
    band: str = "bartlett",
    confidence: float | None = None,
) -> np.ndarray:
    """Half-widths of the confidence band drawn around zero in an ACF plot, lag by lag.

    ``band="white"``: ``z / sqrt(n)`` at every lag ``k >= 1``, the band for the null hypothesis
    of white noise. ``band="bartlett"``: ``z * se_k`` with Bartlett's standard error

    ``se_k = sqrt((1 + 2 * sum_{j=1}^{k-1} r_j^2) / n)``,

    the band statsmodels' ``acf(..., alpha=...)`` and ``plot_acf`` use: under the null hypothesis
    that the series is a moving average of order ``k - 1`` (autocorrelations beyond lag
    ``k - 1`` are zero), about ``confidence_level`` of the sample values ``r_k`` fall inside
    it. ``z`` is the two-sided normal quantile of ``confidence_level``
    (:func:`corrlib.inference.normal_quantile`: 1.959964 at 95 %, as statsmodels). Lag 0 gets 0.

    Parameters
    ----------
    acf : tensor or array, shape ``(K + 1,)``
        Autocorrelations at lags ``0..K``.
    n : int
        Length of the series.
    confidence_level : float
        Coverage, strictly between 0 and 1.
    band : {"bartlett", "white"}
        Which band.
    confidence : float, optional
        Deprecated name of ``confidence_level``.

    Returns
    -------
    numpy.ndarray, shape ``(K + 1,)``
        Half-widths (``0`` at lag 0).
    """
    level = _level(confidence_level, confidence, "acf_band")
    values = _to_numpy(_checked_acf(acf, n, level, band))
    z = _two_sided_z(level)
    half = np.full(values.shape, z / np.sqrt(float(n)))
    if band == "bartlett" and values.shape[0] > 2:
        half[2:] *= np.sqrt(1.0 + 2.0 * np.cumsum(values[1:-1] ** 2))
    half[0] = 0.0
    return half


def acf_plot(
    acf: Any,
    n: int,
    ax: Any = None,
    *,
    confidence_level: float = 0.95,
    band: str = "bartlett",
    title: str | None = "Autocorrelation",
    color: str | None = None,
    confidence: float | None = None,
) -> Any:
    """Draw an autocorrelation function as stems at lags ``0..K`` with a confidence band.

    The band (see :func:`acf_band`) is by default Bartlett's, widening with the lag as the
    sample autocorrelations at smaller lags are large, as in statsmodels' ``plot_acf``: a stem
    outside it is evidence of autocorrelation at that lag beyond those at smaller lags. With
    ``band="white"`` it is the constant ``+-z / sqrt(n)`` (``z = 1.96`` for 95 %), which is
    valid only under the null hypothesis of white noise: for an autocorrelated series it is too
    narrow, and stems at large lags cross it by chance far more often than
    ``1 - confidence_level``.

    Parameters
    ----------
    acf : tensor or array, shape ``(K + 1,)``
        Autocorrelations at lags ``0, 1, ..., K`` (e.g. from :func:`corrlib.autocorr`).
    n : int
        Length of the series the autocorrelations were computed from, ``n >= 1``.
    ax : matplotlib Axes, optional
        Where to draw; by default a new figure.
    confidence_level : float
        Coverage of the band, strictly between 0 and 1.
    band : {"bartlett", "white"}
        Bartlett's band (default, as statsmodels) or the white-noise band.
    title : str or None
        Axes title (``None`` for none).
    color : str, optional
        Colour of the stems.
    confidence : float, optional
        Deprecated name of ``confidence_level``.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn on. The band's edges are the two lines with ``gid`` ``"acf-band"``
        (upper edge first), drawn over the lags ``1..K`` (``0..K`` for a one-lag ``acf``).

    Raises
    ------
    ValueError
        If ``acf`` is not 1-D and non-empty, ``n`` is not a positive integer,
        ``confidence_level`` is outside (0, 1) or ``band`` is unknown.
    """

    level = _level(confidence_level, confidence, "acf_plot")
    values = _to_numpy(_checked_acf(acf, n, level, band))
    half = acf_band(values, n, confidence_level=level, band=band)
    lags = np.arange(values.shape[0])
    if ax is None:
        _, ax = plt.subplots()
    color = color if color is not None else "C0"
    if band == "white" or values.shape[0] == 1:
        edge_x = np.array([-0.5, lags[-1] + 0.5])  # a constant band spans the whole axis
        edge = np.full(2, _white(n, level))
    else:
        edge_x, edge = lags[1:], half[1:]
    name = "Bartlett" if band == "bartlett" else "white-noise"
    ax.fill_between(edge_x, -edge, edge, color="0.85", alpha=0.6, zorder=0, lw=0)
    for sign in (1.0, -1.0):
        ax.plot(
            edge_x,
            sign * edge,
            color="0.4",
            ls="--",
            lw=0.8,
            gid="acf-band",
            label=f"{level:.0%} {name} band" if sign > 0 else None,
        )
    ax.axhline(0.0, color="black", lw=0.8)
    ax.vlines(lags, 0.0, values, color=color, lw=1.5)
    ax.plot(lags, values, "o", color=color, ms=4, label="sample ACF")
    ax.set_xlabel("lag k")
    ax.set_ylabel("autocorrelation")
    lo = min(-1.05 * float(edge.max()), float(np.nanmin(values)) - 0.05, -0.1)
    ax.set_ylim(lo, 1.05)
    if title is not None:
        ax.set_title(title)
    ax.legend(loc="upper right")
    return ax


def _checked_acf(acf: Any, n: int, confidence_level: float, band: str) -> torch.Tensor:
    """Validate the arguments shared by :func:`acf_plot` and :func:`acf_band`."""
    t, _ = as_data(acf, "acf")
    check_ndim(t, 1, "acf")
    if t.numel() == 0:
        raise ValueError("acf must hold at least lag 0, got shape (0,)")
    check_positive_int(n, "n (the series length)")
    if not 0.0 < confidence_level < 1.0:
        raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level!r}")
    if band not in ACF_BANDS:
        raise ValueError(f"band must be one of {ACF_BANDS}, got {band!r}")
    return t


def _white(n: int, confidence_level: float) -> float:
    """The white-noise half-width ``z / sqrt(n)``."""
    return _two_sided_z(confidence_level) / np.sqrt(float(n))


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    """A float64 numpy copy of ``t`` (detached, on the CPU)."""
    return t.detach().to(device="cpu", dtype=torch.float64).numpy()


def _square_matrix(
    C: Any, labels: Sequence[str] | None, name: str
) -> tuple[np.ndarray, list[str] | None]:
    """Validate a square matrix and its labels; return a float64 array and the labels."""
    if labels is None and hasattr(C, "columns") and hasattr(C, "to_numpy"):
        labels = [str(c) for c in C.columns]
    if hasattr(C, "to_numpy"):
        C = np.array(C.to_numpy(), dtype=np.float64)  # a writable copy (pandas may give read-only)
    t, _ = as_data(C, name)
    check_square(t, name)
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(labels) != t.shape[0]:
            raise ValueError(
                f"labels has {len(labels)} names for a matrix of shape {tuple(t.shape)}"
            )
    return _to_numpy(t), labels


def _two_sided_z(confidence_level: float) -> float:
    """The two-sided standard-normal quantile (1.959964 at 95 %)."""
    return normal_quantile((1.0 + confidence_level) / 2.0)
