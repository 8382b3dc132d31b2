"""Plots for correlation matrices and autocorrelation functions.

Every function draws and returns the matplotlib object it drew on (an ``Axes`` or seaborn's
``ClusterGrid``) and never calls ``plt.show()``: the caller decides when a figure is shown or
saved. Inputs may be tensors (on any device, with or without gradients), numpy arrays, nested
lists or, for the matrix plots, pandas DataFrames (whose column names become the labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import matplotlib as mpl
import numpy as np
import torch

from corrlib._validation import as_float_tensor, check_ndim, check_square, check_symmetric

__all__ = ["acf_plot", "corr_clustermap", "corr_heatmap", "use_course_style"]

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
    import matplotlib.pyplot as plt  # noqa: F401  (activates the backend before styling)
    import seaborn as sns

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
    import matplotlib.pyplot as plt
    import seaborn as sns

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
    import pandas as pd
    import seaborn as sns
    from scipy.cluster import hierarchy
    from scipy.spatial.distance import squareform

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
    linkage = hierarchy.linkage(squareform(dist, checks=False), method=method)
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


def acf_plot(
    acf: Any,
    n: int,
    ax: Any = None,
    *,
    confidence: float = 0.95,
    title: str | None = "Autocorrelation",
    color: str | None = None,
) -> Any:
    """Draw an autocorrelation function as stems at lags ``0..K`` with a white-noise band.

    The band is ``+-z / sqrt(n)`` with ``z`` the normal quantile of ``confidence``
    (1.96 for 95 %): under the null hypothesis of white noise, about that share of the sample
    autocorrelations at lags ``>= 1`` fall inside it. (statsmodels' ``plot_acf`` widens its
    band with Bartlett's formula instead; the constant band is the simpler test for noise.)

    Parameters
    ----------
    acf : tensor or array, shape ``(K + 1,)``
        Autocorrelations at lags ``0, 1, ..., K`` (e.g. from :func:`corrlib.autocorr`).
    n : int
        Length of the series the autocorrelations were computed from, ``n >= 1``.
    ax : matplotlib Axes, optional
        Where to draw; by default a new figure.
    confidence : float
        Coverage of the band, strictly between 0 and 1.
    title : str or None
        Axes title (``None`` for none).
    color : str, optional
        Colour of the stems.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn on. The band's edges are the two lines with ``gid`` ``"acf-band"``.

    Raises
    ------
    ValueError
        If ``acf`` is not 1-D and non-empty, ``n`` is not a positive integer or
        ``confidence`` is outside (0, 1).
    """
    import matplotlib.pyplot as plt

    t = as_float_tensor(acf, "acf")
    check_ndim(t, 1, "acf")
    if t.numel() == 0:
        raise ValueError("acf must hold at least lag 0, got shape (0,)")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer (the series length), got {n!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    values = _to_numpy(t)
    lags = np.arange(values.shape[0])
    band = _normal_quantile(confidence) / np.sqrt(float(n))
    if ax is None:
        _, ax = plt.subplots()
    color = color if color is not None else "C0"
    ax.axhspan(-band, band, color="0.85", alpha=0.6, zorder=0, lw=0)
    for sign in (1.0, -1.0):
        ax.axhline(
            sign * band,
            color="0.4",
            ls="--",
            lw=0.8,
            gid="acf-band",
            label=f"{confidence:.0%} band for white noise" if sign > 0 else None,
        )
    ax.axhline(0.0, color="black", lw=0.8)
    ax.vlines(lags, 0.0, values, color=color, lw=1.5)
    ax.plot(lags, values, "o", color=color, ms=4, label="sample ACF")
    ax.set_xlabel("lag k")
    ax.set_ylabel("autocorrelation")
    lo = min(-1.05 * band, float(np.nanmin(values)) - 0.05, -0.1)
    ax.set_ylim(lo, 1.05)
    if title is not None:
        ax.set_title(title)
    ax.legend(loc="upper right")
    return ax


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
    t = as_float_tensor(C, name)
    check_square(t, name)
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(labels) != t.shape[0]:
            raise ValueError(
                f"labels has {len(labels)} names for a matrix of shape {tuple(t.shape)}"
            )
    return _to_numpy(t), labels


def _normal_quantile(confidence: float) -> float:
    """Two-sided standard-normal quantile; the conventional 1.96 at 95 %."""
    if confidence == 0.95:
        return 1.96
    return NormalDist().inv_cdf((1.0 + confidence) / 2.0)
