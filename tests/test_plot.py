"""Tests for corrlib.plot (Agg backend, no display)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from corrlib import plot  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def corr() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 5))
    x[:, 1] += x[:, 0]
    x[:, 4] -= 2 * x[:, 3]
    return np.corrcoef(x, rowvar=False)


def test_use_course_style_sets_fixed_size_and_prints_nothing(capsys) -> None:
    with matplotlib.rc_context():
        plot.use_course_style()
        assert tuple(matplotlib.rcParams["figure.figsize"]) == (6.4, 4.0)
        assert 80 <= matplotlib.rcParams["figure.dpi"] <= 100
        assert matplotlib.rcParams["savefig.dpi"] == matplotlib.rcParams["figure.dpi"]
        assert matplotlib.get_backend().lower() == "agg"
        fig, _ = plt.subplots()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        assert buf.tell() < 50_000  # small PNG
        plot.use_course_style(**{"figure.dpi": 100})
        assert matplotlib.rcParams["figure.dpi"] == 100
    assert capsys.readouterr() == ("", "")


def test_corr_heatmap_limits_labels_and_return(corr: np.ndarray) -> None:
    labels = list("abcde")
    ax = plot.corr_heatmap(torch.from_numpy(corr), labels=labels, title="C")
    assert isinstance(ax, matplotlib.axes.Axes)
    mesh = ax.collections[0]
    assert mesh.get_clim() == (-1.0, 1.0)
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(5, 5), corr)
    assert [t.get_text() for t in ax.get_xticklabels()] == labels
    assert [t.get_text() for t in ax.get_yticklabels()] == labels
    assert ax.get_title() == "C"
    # centred: r = 0 is the middle colour of the diverging map
    assert mesh.norm(0.0) == pytest.approx(0.5)


def test_corr_heatmap_mask_annot_and_given_axes(corr: np.ndarray) -> None:
    fig, (ax0, ax1) = plt.subplots(1, 2)
    out = plot.corr_heatmap(corr, ax=ax1, mask_upper=True, annot=True)
    assert out is ax1 and len(ax0.collections) == 0
    arr = out.collections[0].get_array()
    assert np.ma.count_masked(arr) == 10  # the strict upper triangle of 5 x 5
    assert [t.get_text() for t in out.texts if t.get_text()][:2] == ["1.00", f"{corr[1, 0]:.2f}"]
    assert len([t for t in out.texts if t.get_text()]) == 15


def test_corr_heatmap_accepts_dataframe_and_grad_tensor(corr: np.ndarray) -> None:
    frame = pd.DataFrame(corr, columns=["v", "w", "x", "y", "z"])
    ax = plot.corr_heatmap(frame)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["v", "w", "x", "y", "z"]
    t = torch.tensor(corr, requires_grad=True)
    plot.corr_heatmap(t)


def test_corr_heatmap_rejects_bad_shapes(corr: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"square.*\(3, 4\)"):
        plot.corr_heatmap(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"square.*\(2, 2, 2\)"):
        plot.corr_heatmap(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="labels has 2 names"):
        plot.corr_heatmap(corr, labels=["a", "b"])


def test_corr_heatmap_never_shows(monkeypatch: pytest.MonkeyPatch, corr: np.ndarray) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("plt.show() must not be called")

    monkeypatch.setattr(plt, "show", fail)
    plot.corr_heatmap(corr)
    plot.corr_clustermap(corr)
    plot.acf_plot(np.array([1.0, 0.3]), 50)


def test_corr_clustermap_groups_correlated_variables(corr: np.ndarray) -> None:
    labels = list("abcde")
    grid = plot.corr_clustermap(corr, labels=labels)
    order = grid.dendrogram_row.reordered_ind
    assert sorted(order) == list(range(5))
    assert order == grid.dendrogram_col.reordered_ind
    # 0-1 (r > 0) and 3-4 (r < 0 but |r| large) are neighbours on the 1 - |r| distance
    pos = {v: i for i, v in enumerate(order)}
    assert abs(pos[0] - pos[1]) == 1
    assert abs(pos[3] - pos[4]) == 1
    mesh = grid.ax_heatmap.collections[0]
    assert mesh.get_clim() == (-1.0, 1.0)
    shown = np.asarray(mesh.get_array()).reshape(5, 5)
    np.testing.assert_allclose(shown, corr[np.ix_(order, order)])


def test_corr_clustermap_rejects_bad_input(corr: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"square.*\(3, 4\)"):
        plot.corr_clustermap(np.zeros((3, 4)))
    bad = corr.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        plot.corr_clustermap(bad)
    asym = corr.copy()
    asym[0, 1] += 0.5
    with pytest.raises(ValueError, match="not symmetric"):
        plot.corr_clustermap(asym)
    with pytest.raises(ValueError, match="at least 2"):
        plot.corr_clustermap(np.ones((1, 1)))
    with pytest.raises(ValueError, match="Euclidean"):
        plot.corr_clustermap(corr, method="ward")


def test_acf_plot_band_and_stems() -> None:
    acf = torch.tensor([1.0, 0.6, 0.36, 0.216, -0.1])
    n = 400
    ax = plot.acf_plot(acf, n, title="AR(1)", band="white")
    band_lines = [line for line in ax.lines if line.get_gid() == "acf-band"]
    assert len(band_lines) == 2
    levels = sorted(float(line.get_ydata()[0]) for line in band_lines)
    assert levels == pytest.approx([-Z95 / 20, Z95 / 20], rel=1e-12)  # the normal quantile
    markers = [line for line in ax.lines if line.get_label() == "sample ACF"]
    assert len(markers) == 1
    np.testing.assert_allclose(markers[0].get_xdata(), np.arange(5))
    np.testing.assert_allclose(markers[0].get_ydata(), acf.numpy())
    assert ax.get_title() == "AR(1)"
    lo, hi = ax.get_ylim()
    assert lo <= -0.15 and hi >= 1.0


def test_acf_plot_confidence_and_axes() -> None:
    fig, ax = plt.subplots()
    out = plot.acf_plot(
        np.array([1.0, 0.1, 0.0]), 100, ax=ax, confidence_level=0.99, title=None, band="white"
    )
    assert out is ax and ax.get_title() == ""
    level = max(float(line.get_ydata()[0]) for line in ax.lines if line.get_gid() == "acf-band")
    assert level == pytest.approx(2.5758293 / 10, rel=1e-6)


@pytest.mark.parametrize(
    ("acf", "n", "kwargs", "match"),
    [
        (np.ones((2, 2)), 10, {}, r"1-D.*\(2, 2\)"),
        (np.array([]), 10, {}, "at least lag 0"),
        (np.ones(3), 0, {}, "positive integer"),
        (np.ones(3), 2.5, {}, "positive integer"),
        (np.ones(3), 10, {"confidence_level": 1.0}, "confidence_level"),
        (np.ones(3), 10, {"band": "normal"}, "band must be one of"),
    ],
)
def test_acf_plot_rejects_bad_input(acf, n, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        plot.acf_plot(acf, n, **kwargs)


def _ar1(n: int, phi: float, seed: int) -> np.ndarray:
    from scipy import signal

    return signal.lfilter([1.0], [1.0, -phi], np.random.default_rng(seed).normal(size=n))


@pytest.mark.parametrize(("phi", "seed"), [(0.8, 0), (0.5, 1), (-0.6, 2), (0.0, 3)])
def test_acf_band_bartlett_equals_statsmodels_confint(phi: float, seed: int) -> None:
    from statsmodels.tsa.stattools import acf as sm_acf

    series = _ar1(300, phi, seed)
    values, confint = sm_acf(series, nlags=25, alpha=0.05, fft=True, result_object=False)
    width = (confint[:, 1] - confint[:, 0]) / 2  # statsmodels: acf -+ z * se_k
    half = plot.acf_band(values, series.shape[0])
    np.testing.assert_allclose(half, width, rtol=1e-12, atol=1e-15)  # the same quantile
    # the band is statsmodels' and not the white one (whose width is constant)
    if phi != 0.0:
        assert half[-1] > 1.2 * half[1]


def test_acf_band_formula_by_hand() -> None:
    r = np.array([1.0, 0.5, 0.25, -0.1])
    n = 100
    expected = Z95 * np.sqrt(np.array([0.0, 1.0, 1 + 2 * 0.25, 1 + 2 * (0.25 + 0.0625)]) / n)
    np.testing.assert_allclose(plot.acf_band(r, n), expected, rtol=1e-12)
    white = [0, Z95 / 10, Z95 / 10, Z95 / 10]
    np.testing.assert_allclose(plot.acf_band(r, n, band="white"), white, rtol=1e-12)
    assert plot.acf_band(np.array([1.0]), n).tolist() == [0.0]


def test_acf_plot_draws_bartlett_by_default() -> None:
    series = _ar1(400, 0.8, 5)
    from corrlib import autocorr

    acf = autocorr(series, max_lag=30)
    ax = plot.acf_plot(acf, 400)
    upper, lower = [line for line in ax.lines if line.get_gid() == "acf-band"]
    half = plot.acf_band(acf, 400)
    np.testing.assert_allclose(upper.get_xdata(), np.arange(1, 31))
    np.testing.assert_allclose(upper.get_ydata(), half[1:], rtol=1e-12)
    np.testing.assert_allclose(lower.get_ydata(), -half[1:], rtol=1e-12)
    assert "Bartlett" in upper.get_label()
    white = plot.acf_plot(acf, 400, band="white")
    levels = {
        float(v) for line in white.lines if line.get_gid() == "acf-band" for v in line.get_ydata()
    }
    assert sorted(levels) == pytest.approx([-Z95 / 20, Z95 / 20], rel=1e-12)
    assert half[-1] > 2 * Z95 / 20  # phi = 0.8: Bartlett's band is over twice as wide


def test_acf_plot_single_lag() -> None:
    ax = plot.acf_plot(np.array([1.0]), 10)
    assert len([line for line in ax.lines if line.get_gid() == "acf-band"]) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_plots_accept_gpu_tensors(corr: np.ndarray) -> None:
    c = torch.from_numpy(corr).cuda()
    ax = plot.corr_heatmap(c)
    np.testing.assert_allclose(np.asarray(ax.collections[0].get_array()).reshape(5, 5), corr)
    plot.corr_clustermap(c)
    plot.acf_plot(torch.tensor([1.0, 0.5, 0.25], device="cuda"), 100)


Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)


def test_the_band_uses_the_one_normal_quantile_and_the_old_keyword_is_deprecated() -> None:
    from scipy import stats

    from corrlib.inference import normal_quantile

    assert normal_quantile(0.975) == pytest.approx(stats.norm.ppf(0.975), rel=1e-15)
    np.testing.assert_allclose(
        normal_quantile([0.001, 0.5, 0.9]), stats.norm.ppf([0.001, 0.5, 0.9]), rtol=1e-14
    )
    r = np.array([1.0, 0.5, 0.25])
    for level in (0.8, 0.95, 0.99):
        half = plot.acf_band(r, 100, confidence_level=level, band="white")
        assert half[1] == pytest.approx(stats.norm.ppf((1 + level) / 2) / 10, rel=1e-14)
    with pytest.warns(DeprecationWarning, match="confidence_level"):
        old = plot.acf_band(r, 100, confidence=0.9)
    np.testing.assert_array_equal(old, plot.acf_band(r, 100, confidence_level=0.9))
    with pytest.warns(DeprecationWarning, match="confidence_level"):
        plot.acf_plot(r, 100, confidence=0.9)
