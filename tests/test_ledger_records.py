"""corrlib.ledger: a chapter's key results printed once, by name, and read back from the file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from corrlib.comparison import Verdict
from corrlib.ledger import (
    KEY_RESULTS_TAG,
    format_key_value,
    parse_key_results,
    read_key_results,
    show_key_results,
)


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        (0.125, {}, "0.12"),  # round half to even, as Python's format
        (0.126, {"digits": 3}, "0.126"),
        (-0.001, {}, "0.00"),  # no "-0.00"
        (0.031, {"signed": True}, "+0.03"),
        (-0.031, {"signed": True, "digits": 3}, "-0.031"),
        (np.float32(0.5), {}, "0.50"),
        (torch.tensor(0.25, dtype=torch.float64), {}, "0.25"),
        (np.int64(7), {}, "7"),
        (7, {"signed": True}, "+7"),
        (Verdict.INCONCLUSIVE, {}, "inconclusive"),
        ("  holds ", {}, "holds"),
    ],
)
def test_format_key_value(value, kwargs, expected):
    assert format_key_value(value, **kwargs) == expected


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "", "two\nlines"])
def test_format_key_value_refuses_what_a_ledger_cannot_cite(value):
    with pytest.raises(ValueError):
        format_key_value(value)


@pytest.mark.parametrize("value", [[0.1, 0.2], torch.ones(2), None])
def test_format_key_value_refuses_non_scalars(value):
    with pytest.raises(TypeError):
        format_key_value(value)


def test_show_prints_a_record_that_parses_back(capsys):
    record = show_key_results(
        "05", {"gain": 0.0123, "n_seeds": 5, "verdict": Verdict.HIGHER}, digits=3
    )
    printed = capsys.readouterr().out
    assert record == {"05.gain": "0.012", "05.n_seeds": "5", "05.verdict": "higher"}
    assert parse_key_results(printed) == record


@pytest.mark.parametrize(
    ("chapter", "results"), [("5", {"a": 1}), ("05", {}), ("05", {"Bad": 1}), ("05", {"1a": 1})]
)
def test_show_refuses_malformed_names(chapter, results):
    with pytest.raises(ValueError):
        show_key_results(chapter, results)


def test_parse_refuses_a_name_recorded_twice():
    with pytest.raises(ValueError, match="twice"):
        parse_key_results("  05.a = 1\n  05.a = 2\n")


def _notebook(tmp_path, cells):
    path = tmp_path / "nb.ipynb"
    path.write_text(
        json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    return path


def _code(text, tags=(KEY_RESULTS_TAG,)):
    outputs = [{"output_type": "stream", "name": "stdout", "text": text}] if text else []
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "outputs": outputs, "source": ""}


def test_read_key_results_reads_only_tagged_cells(tmp_path):
    path = _notebook(
        tmp_path,
        [
            _code("  05.untagged = 9\n", tags=()),
            _code("Key results ...\n  05.a = 0.10\n"),
            _code("  05.b = lower\n"),
        ],
    )
    assert read_key_results(path) == {"05.a": "0.10", "05.b": "lower"}


def test_read_key_results_refuses_a_notebook_without_a_record(tmp_path):
    with pytest.raises(ValueError, match="no code cell tagged"):
        read_key_results(_notebook(tmp_path, [_code("  05.a = 1\n", tags=())]))
    with pytest.raises(ValueError, match="no stored output"):
        read_key_results(_notebook(tmp_path, [_code("")]))
