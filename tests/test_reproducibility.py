"""seed_everything, get_device and show_versions."""

import random

import numpy as np
import pytest
import torch

import corrlib


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))  # noqa: NPY002


def test_same_seed_same_numbers():
    threads = torch.get_num_threads()
    try:
        corrlib.seed_everything(3, num_threads=1)
        a = _draws()
        assert torch.get_num_threads() == 1
        assert torch.are_deterministic_algorithms_enabled()
        corrlib.seed_everything(3)
        assert _draws() == a
        corrlib.seed_everything(4)
        assert _draws() != a
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_bad_seed(bad):
    with pytest.raises(ValueError, match="seed"):
        corrlib.seed_everything(bad)


def test_get_device():
    device = corrlib.get_device()
    assert isinstance(device, torch.device)
    assert torch.zeros(1, device=device).device.type == device.type
    assert corrlib.get_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            corrlib.get_device("cuda")


def test_show_versions_prints_the_stack(capsys):
    corrlib.show_versions()
    out = capsys.readouterr().out
    for name in ("python", "torch", "numpy", "corrlib", "CUDA available"):
        assert name in out
    assert torch.__version__.split("+")[0] in out


def test_rng_state_round_trip_restores_every_stream(tmp_path):
    from corrlib.reproducibility import get_rng_state, set_rng_state

    corrlib.seed_everything(11, deterministic=False)
    g = torch.Generator().manual_seed(5)
    state = get_rng_state(g)
    path = tmp_path / "rng.pt"
    torch.save(state, path)
    expected = (*_draws(), float(torch.rand(1, generator=g)))
    _draws()  # move every stream on
    set_rng_state(torch.load(path, weights_only=True), g)
    assert (*_draws(), float(torch.rand(1, generator=g))) == expected
    assert state["generator"] is not None and get_rng_state()["generator"] is None


def test_seed_everything_does_not_import_the_compiler() -> None:
    """The deterministic switch is set without loading torch._inductor (seconds per kernel)."""
    import subprocess
    import sys

    code = (
        "import sys, torch, corrlib; corrlib.seed_everything(0); "
        "assert torch.are_deterministic_algorithms_enabled(); "
        "assert torch.is_deterministic_algorithms_warn_only_enabled(); "
        "print('torch._inductor.config' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_seed_everything_sets_the_compiler_flag_when_it_is_loaded() -> None:
    import torch._inductor.config as inductor_config

    try:
        corrlib.seed_everything(0)
        assert inductor_config.deterministic is True
        corrlib.seed_everything(0, deterministic=False)
        assert inductor_config.deterministic is False
    finally:
        torch.use_deterministic_algorithms(False)
