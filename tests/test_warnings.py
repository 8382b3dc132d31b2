"""corrlib's one warning path: every warning names the caller's line, one constant-input wording."""

import inspect
import warnings

import pytest
import torch

import corrlib
from corrlib import ConstantInputWarning
from corrlib.bootstrap import bootstrap_ci
from corrlib.channels import channel_correlation
from corrlib.comparison import paired_difference
from corrlib.inference import fisher_ci
from corrlib.similarity import MinibatchCKA, cka_matrix, linear_cka

CONSTANT = torch.ones(20, dtype=torch.float64)
VARYING = torch.arange(20, dtype=torch.float64)
CONSTANT_2D = torch.stack([CONSTANT, VARYING], dim=1)


def _caught(call):
    """Run ``call`` and return the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return caught


def _running_correlation():
    rc = corrlib.RunningCorrelation(2, dtype=torch.float64)
    rc.update(CONSTANT_2D)
    return rc


def _minibatch_cka():
    acc = MinibatchCKA()
    acc.update(torch.ones(8, 3), torch.randn(8, 3, generator=torch.Generator().manual_seed(0)))
    return acc


def _estimate_lag_of_constant():
    with pytest.raises(ValueError, match="undefined"):
        corrlib.estimate_lag(VARYING, CONSTANT)


def _pairwise_constant():
    # column 0 is constant on the rows where column 1 is present
    x = torch.tensor([[1.0, float("nan")], [1.0, 2.0], [1.0, 3.0], [5.0, float("nan")]])
    return x


# (name, call, category): each call is a public function, direct or through another one.
CASES = [
    ("pearson", lambda: corrlib.pearson(CONSTANT, VARYING), ConstantInputWarning),
    ("spearman", lambda: corrlib.spearman(VARYING, CONSTANT), ConstantInputWarning),
    ("corr_matrix", lambda: corrlib.corr_matrix(CONSTANT_2D), ConstantInputWarning),
    (
        "corr_matrix spearman",
        lambda: corrlib.corr_matrix(CONSTANT_2D, method="spearman"),
        ConstantInputWarning,
    ),
    (
        "corr_matrix omit",
        lambda: corrlib.corr_matrix(_pairwise_constant(), nan_policy="omit"),
        ConstantInputWarning,
    ),
    (
        "corr_matrix infinite",
        lambda: corrlib.corr_matrix(torch.tensor([[1.0, 2.0], [float("inf"), 1.0], [3.0, 0.0]])),
        RuntimeWarning,
    ),
    (
        "pearson_test via pearson",
        lambda: corrlib.pearson_test(CONSTANT, VARYING),
        ConstantInputWarning,
    ),
    (
        "spearman_test via spearman",
        lambda: corrlib.spearman_test(CONSTANT, VARYING),
        ConstantInputWarning,
    ),
    (
        "channel_correlation via corr_matrix",
        lambda: channel_correlation(torch.ones(4, 2, 3, 3)),
        ConstantInputWarning,
    ),
    (
        "bootstrap_ci via pearson",
        lambda: bootstrap_ci((CONSTANT, VARYING), corrlib.pearson, paired=True, n_resamples=3),
        ConstantInputWarning,
    ),
    ("autocorr", lambda: corrlib.autocorr(CONSTANT), ConstantInputWarning),
    ("crosscorr", lambda: corrlib.crosscorr(CONSTANT, VARYING, 3), ConstantInputWarning),
    ("estimate_lag via crosscorr", lambda: _estimate_lag_of_constant(), ConstantInputWarning),
    ("linear_cka", lambda: linear_cka(torch.ones(8, 3), torch.randn(8, 3)), ConstantInputWarning),
    (
        "cka_matrix",
        lambda: cka_matrix([torch.ones(8, 3), torch.randn(8, 3)]),
        ConstantInputWarning,
    ),
    ("RunningCorrelation.compute", lambda: _running_correlation().compute(), ConstantInputWarning),
    ("MinibatchCKA.compute", lambda: _minibatch_cka().compute(), ConstantInputWarning),
    (
        "fisher_ci(confidence=)",
        lambda: fisher_ci(0.5, 10, confidence=0.9),
        DeprecationWarning,
    ),
    (
        "bootstrap_ci(confidence=)",
        lambda: bootstrap_ci(VARYING, torch.mean, n_resamples=3, confidence=0.9),
        DeprecationWarning,
    ),
    (
        "PairedDifference.z",
        lambda: paired_difference([1.0, 2.0, 3.0], [1.5, 2.0, 2.0]).z,
        DeprecationWarning,
    ),
]


@pytest.mark.parametrize("name, call, category", CASES, ids=[c[0] for c in CASES])
def test_each_warning_points_at_the_callers_line(name, call, category):
    ours = [w for w in _caught(call) if issubclass(w.category, category)]
    assert ours, f"{name} did not warn"
    for w in ours:
        assert w.filename == __file__, (name, w.filename, w.lineno)


def test_a_warning_through_two_corrlib_functions_names_this_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        corrlib.pearson_test(CONSTANT, VARYING)  # pearson_test -> pearson -> corr_matrix
        expected = inspect.currentframe().f_lineno - 1
    (w,) = [w for w in caught if w.category is ConstantInputWarning]
    assert w.filename == __file__
    assert w.lineno == expected


def test_a_method_called_through_torch_module_call_names_this_line():
    """``nn.Module.__call__`` (torch's frame) is skipped like corrlib's own frames."""

    class Probe(torch.nn.Module):
        def forward(self, x):
            return corrlib.corr_matrix(x)

    outer = torch.nn.Sequential(Probe())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outer(CONSTANT_2D)
    (w,) = [w for w in caught if w.category is ConstantInputWarning]
    assert w.filename == __file__  # Probe.forward, the user's code


CONSTANT_CALLS = [case for case in CASES if case[2] is ConstantInputWarning]


@pytest.mark.parametrize("name, call, category", CONSTANT_CALLS, ids=[c[0] for c in CONSTANT_CALLS])
def test_the_constant_input_warning_has_one_wording(name, call, category):
    messages = {str(w.message) for w in _caught(call) if w.category is ConstantInputWarning}
    assert messages
    for message in messages:
        assert message.startswith("An input array is constant ("), message
        assert message.endswith(" is not defined (NaN)."), message


def test_no_public_function_takes_a_notes_argument():
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(corrlib.__path__, "corrlib."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        module = importlib.import_module(info.name)
        for public in getattr(module, "__all__", []):
            obj = getattr(module, public)
            targets = [obj]
            if inspect.isclass(obj):
                targets = [m for _, m in inspect.getmembers(obj, inspect.isfunction)]
            for target in targets:
                if callable(target) and not inspect.ismodule(target):
                    try:
                        params = inspect.signature(target).parameters
                    except (TypeError, ValueError):
                        continue
                    assert "notes" not in params, f"{info.name}.{public}: {target}"


def test_corrlib_calls_warnings_warn_in_one_place():
    import pathlib

    package = pathlib.Path(corrlib.__file__).parent
    callers = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "warnings.warn(" in path.read_text()
    ]
    assert callers == ["_warnings.py"]
