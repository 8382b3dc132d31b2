"""Notebook 06's FGSM and PGD, checked against the adversarial-robustness-toolbox (ART).

The attacks are written in the notebook, in the one code cell tagged ``attack-code``, which
only defines functions. This test reads that cell's source from the notebook's JSON (nothing
else of the notebook runs), executes it, and compares its ``fgsm`` and ``pgd`` with ART's
``FastGradientMethod`` and ``ProjectedGradientDescent`` on a small fixed model: same radius,
step, number of iterations and clip values, random initialisation off, so that both compute
the same sequence of signed-gradient steps and agree to float32 rounding. It then checks
properties of PGD with random starts and restarts, which ART's comparison does not cover.
ART is a test-only reference: neither the notebook nor corrlib imports it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
from art.estimators.classification import PyTorchClassifier
from torch import nn

# Reads a notebook: a test of the course, like the other notebook tests (tests/conftest.py).
pytestmark = pytest.mark.course

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06_robustness_security.ipynb"
TOL = 1e-6  # float32 rounding; in practice the arrays agree exactly


def _attack_namespace() -> dict:
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    tagged = [
        c
        for c in cells
        if c["cell_type"] == "code" and "attack-code" in c.get("metadata", {}).get("tags", [])
    ]
    assert len(tagged) == 1, f"expected one cell tagged 'attack-code', found {len(tagged)}"
    source = "".join(tagged[0]["source"])
    assert "import" not in source, "the attack cell only defines functions (no imports)"
    namespace = {"torch": torch, "F": F}
    exec(compile(source, f"{NOTEBOOK.name}:attack-code", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def attacks() -> dict:
    return _attack_namespace()


@pytest.fixture(scope="module")
def setting():
    """A small MLP trained briefly on 8x8 images in [0, 1], in eval mode, and a batch."""
    gen = torch.Generator().manual_seed(0)
    centres = torch.rand(10, 1, 8, 8, generator=gen)
    y = torch.arange(10).repeat(20)
    x = (centres[y] + 0.25 * torch.randn(len(y), 1, 8, 8, generator=gen)).clamp(0, 1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    classifier = PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, 8, 8),
        nb_classes=10,
        clip_values=(0.0, 1.0),
    )
    return model, classifier, x, y


def _loss(model, x, y) -> torch.Tensor:
    with torch.no_grad():
        return F.cross_entropy(model(x), y, reduction="none")


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.3])
def test_fgsm_equals_art(attacks, setting, eps):
    model, classifier, x, y = setting
    ours = attacks["fgsm"](model, x, y, eps).numpy()
    reference = FastGradientMethod(
        classifier, norm=np.inf, eps=eps, eps_step=eps, num_random_init=0, batch_size=64
    ).generate(x.numpy(), y=y.numpy())
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() <= TOL


@pytest.mark.parametrize(("eps", "alpha", "steps"), [(0.1, 0.025, 10), (0.05, 0.02, 7)])
def test_pgd_equals_art(attacks, setting, eps, alpha, steps):
    model, classifier, x, y = setting
    ours = attacks["pgd"](model, x, y, eps, alpha, steps, random_start=False).numpy()
    reference = ProjectedGradientDescent(
        classifier,
        norm=np.inf,
        eps=eps,
        eps_step=alpha,
        max_iter=steps,
        num_random_init=0,
        batch_size=64,
        verbose=False,
    ).generate(x.numpy(), y=y.numpy())
    assert np.abs(ours - reference).max() <= TOL


def test_pgd_stays_in_the_ball_and_the_valid_range(attacks, setting):
    model, _, x, y = setting
    gen = torch.Generator().manual_seed(1)
    x_adv = attacks["pgd"](model, x, y, 0.1, 0.025, 10, restarts=3, generator=gen)
    assert x_adv.shape == x.shape
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


def test_pgd_is_at_least_as_strong_as_fgsm(attacks, setting):
    model, _, x, y = setting
    gen = torch.Generator().manual_seed(2)
    x_fgsm = attacks["fgsm"](model, x, y, 0.1)
    x_pgd = attacks["pgd"](model, x, y, 0.1, 0.025, 20, restarts=2, generator=gen)
    assert _loss(model, x_pgd, y).mean() >= _loss(model, x_fgsm, y).mean()
    wrong = lambda xa: (model(xa).argmax(1) != y).float().mean()  # noqa: E731
    assert wrong(x_pgd) >= wrong(x_fgsm)
    assert _loss(model, x_pgd, y).mean() > _loss(model, x, y).mean()


def test_restarts_never_weaken_the_attack(attacks, setting):
    # The first restart draws the same random start from the same generator seed, and each
    # example keeps its worst restart: more restarts can only add misclassified examples.
    model, _, x, y = setting
    runs = {
        r: attacks["pgd"](model, x, y, 0.05, 0.0125, 5, r, torch.Generator().manual_seed(3))
        for r in (1, 4)
    }
    wrong = {r: model(v).argmax(1) != y for r, v in runs.items()}
    assert (wrong[4] | ~wrong[1]).all(), "an example fooled with 1 restart is not with 4"
    both_right = ~wrong[1] & ~wrong[4]
    assert (
        _loss(model, runs[4], y)[both_right] >= _loss(model, runs[1], y)[both_right] - 1e-6
    ).all()


def test_random_start_is_reproducible_and_inside_the_ball(attacks, setting):
    model, _, x, y = setting
    a = attacks["pgd"](model, x, y, 0.1, 0.05, 0, 1, torch.Generator().manual_seed(4))
    b = attacks["pgd"](model, x, y, 0.1, 0.05, 0, 1, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, x)  # zero steps: the random start itself
    assert (a - x).abs().max() <= 0.1 + 1e-6 and a.min() >= 0 and a.max() <= 1


def test_attacks_accept_an_ensemble_batch(attacks, setting):
    # The notebook attacks five members at once: x of shape (K, n, ...), labels (K, n); each
    # member's examples equal those of attacking it alone.
    model, _, x, y = setting
    stacked = lambda xs: torch.stack([model(v) for v in xs])  # noqa: E731
    xs, ys = x[:30].expand(3, *x[:30].shape).clone(), y[:30].expand(3, 30)
    together = attacks["fgsm"](stacked, xs, ys, 0.1)
    alone = attacks["fgsm"](model, x[:30], y[:30], 0.1)
    for k in range(3):
        assert torch.allclose(together[k], alone, atol=1e-6)


def test_the_notebook_does_not_import_art():
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert "import art" not in code and "from art" not in code
