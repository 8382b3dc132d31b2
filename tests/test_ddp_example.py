"""The DDP example script: two gloo ranks under torchrun give the one-process result."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "ddp_feature_correlation.py"


def _run(launcher: list[str], options: list[str], out: Path) -> None:
    """Run the script (under ``launcher``, e.g. torchrun) for 3 epochs, writing to ``out``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, *launcher, str(SCRIPT), *options, "--out", str(out), "--epochs", "3"]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _load(out: Path) -> tuple[dict, dict, np.ndarray]:
    return (
        json.loads((out / "results.json").read_text()),
        torch.load(out / "params.pt"),
        np.load(out / "hidden_corr.npy"),
    )


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_two_ranks_equal_one_process(tmp_path):
    # --standalone: a local rendezvous on a free port chosen by torchrun itself (no port race)
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    _run(torchrun, [], tmp_path / "ddp")
    _run([], ["--single"], tmp_path / "one")
    ddp, ddp_params, ddp_corr = _load(tmp_path / "ddp")
    one, one_params, one_corr = _load(tmp_path / "one")

    assert (ddp["mode"], ddp["world_size"]) == ("ddp", 2)
    assert (one["mode"], one["world_size"]) == ("single", 1)
    assert ddp["n_val"] == one["n_val"] == 1797 - 1440
    assert ddp_params.keys() == one_params.keys()
    for name, value in one_params.items():
        torch.testing.assert_close(ddp_params[name], value, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ddp_corr, one_corr, atol=1e-5)
    np.testing.assert_allclose(ddp["train_loss"], one["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(ddp["hidden_offdiag"], one["hidden_offdiag"], rtol=1e-5)
    assert ddp["val_accuracy"] == pytest.approx(one["val_accuracy"], abs=1e-12)
    assert ddp["param_checksum"] == pytest.approx(one["param_checksum"], rel=1e-5)

    # the correlation matrix is a real one, and training did something
    assert one_corr.shape == (32, 32)
    np.testing.assert_allclose(np.diag(one_corr), 1.0, atol=1e-12)
    np.testing.assert_allclose(one_corr, one_corr.T, atol=1e-12)
    assert one["train_loss"][-1] < 0.5 * one["train_loss"][0]
    assert one["val_accuracy"] > 0.85


def _load_script():
    spec = importlib.util.spec_from_file_location("ddp_feature_correlation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_batch_size_that_would_give_unequal_shares_is_refused(tmp_path):
    script = _load_script()
    args = script.parse_args(["--single", "--out", str(tmp_path), "--global-batch-size", "100"])
    with pytest.raises(ValueError, match="global batch size"):
        script.run(args)
    assert not (tmp_path / "results.json").exists()
