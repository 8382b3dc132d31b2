"""corrlib.ledger: a chapter's key results printed once, by name, and read back from the file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from corrlib.comparison import Verdict, paired_difference
from corrlib.ledger import (
    CLAIM_VERDICTS,
    KEY_RESULTS_TAG,
    Cite,
    Claim,
    check_cite,
    cite_outcome,
    claim_verdict,
    format_key_value,
    ledger_markdown,
    ledger_rows,
    paired_cite,
    paired_key_results,
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


# --- paired_key_results, the rule, and the ledger table ------------------------------------------


def test_paired_key_results_names_and_formats_one_comparison():
    res = paired_difference([0.91, 0.93, 0.92, 0.94, 0.92], [0.89, 0.90, 0.90, 0.91, 0.90])
    low, high = res.confidence_interval()
    got = paired_key_results("gain", res, digits=2)
    assert got == {
        "gain_diff": f"{res.mean:+.2f}",
        "gain_low": f"{low:+.2f}",
        "gain_high": f"{high:+.2f}",
        "gain_n": 5,
        "gain_verdict": Verdict.HIGHER,
    }
    # a verdict decided elsewhere (after Holm) is kept; a word that is not a verdict is refused
    assert paired_key_results("gain", res, "inconclusive")["gain_verdict"] == "inconclusive"
    with pytest.raises(ValueError):
        paired_key_results("gain", res, "not shown")
    # no "-0.000": a tiny negative mean prints as zero
    tiny = paired_difference([0.5, 0.5001, 0.4999], [0.50003, 0.50002, 0.50001])
    assert paired_key_results("t", tiny, digits=3)["t_diff"] == "0.000"


@pytest.mark.parametrize(
    ("observed", "claimed", "expected"),
    [
        ("higher", "higher", "for"),
        ("lower", "higher", "against"),
        ("equivalent", "higher", "against"),
        ("higher", "equivalent", "against"),
        ("equivalent", "equivalent", "for"),
        ("inconclusive", "higher", "open"),
        ("inconclusive", "equivalent", "open"),
        ("False", "True", "against"),
        ("True", "True", "for"),
    ],
)
def test_cite_outcome(observed, claimed, expected):
    assert cite_outcome(observed, claimed) == expected


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([], "not tested"),
        ([("higher", "higher")], "holds"),
        ([("lower", "higher"), ("equivalent", "higher")], "does not hold"),
        ([("higher", "higher"), ("lower", "higher")], "depends"),
        ([("higher", "higher"), ("inconclusive", "higher"), ("lower", "higher")], "depends"),
        ([("higher", "higher"), ("higher", "higher"), ("inconclusive", "higher")], "inconclusive"),
        ([("lower", "higher"), ("inconclusive", "higher")], "inconclusive"),
        ([("inconclusive", "higher")], "inconclusive"),
    ],
)
def test_claim_verdict_follows_the_rule(outcomes, expected):
    assert claim_verdict(outcomes) == expected
    assert expected in CLAIM_VERDICTS


def test_cites_name_their_key_results():
    cite = paired_cite("03", "gain", "a gain", "higher")
    assert cite.names == (
        "03.gain_diff",
        "03.gain_low",
        "03.gain_high",
        "03.gain_n",
        "03.gain_verdict",
    )
    assert check_cite("02", "exists", "it exists", "True").names == ("02.exists",)
    with pytest.raises(ValueError):
        paired_cite("03", "gain", "a gain", "inconclusive")
    with pytest.raises(ValueError):
        check_cite("02", "exists", "it exists", "yes")


RECORD = {
    "03.gain_diff": "+0.10",
    "03.gain_low": "+0.05",
    "03.gain_high": "+0.15",
    "03.gain_n": "10",
    "03.gain_verdict": "higher",
    "02.exists": "False",
}
CLAIMS = [
    Claim(
        "a",
        "2.1",
        "A gain",
        "[03](03_x.ipynb)",
        (paired_cite("03", "gain", "mean |r|", "higher"),),
        "here",
    ),
    Claim(
        "b",
        "3.2",
        "It exists",
        "[02](02_x.ipynb)",
        (check_cite("02", "exists", "`f` exists", "True"),),
    ),
    Claim("c", "5.1", "Later"),
    Claim("d", "2.2", "Untested"),
]


def test_ledger_rows_show_the_numbers_the_verdicts_and_the_pending_claims():
    rows = ledger_rows(CLAIMS, RECORD, {"c": "05, somewhere"})
    assert (
        rows[0]["evidence"]
        == "03 · mean |r|: +0.10 [+0.05, +0.15], n = 10: **higher** (claimed: higher)"
    )
    assert rows[0]["verdict"] == "**holds**: here"
    assert rows[1]["verdict"] == "**does not hold**"
    assert rows[1]["evidence"] == "02 · `f` exists: **False** (claimed: True)"
    assert rows[2] == {
        "claim": "Later (5.1)",
        "tested in": "planned: 05, somewhere",
        "evidence": "-",
        "verdict": "**not tested (yet)**",
    }
    assert rows[3]["verdict"] == "**not tested**" and rows[3]["tested in"] == "-"
    table = ledger_markdown(CLAIMS, RECORD, {"c": "05, somewhere"})
    lines = table.splitlines()
    assert lines[0] == "| claim | tested in | evidence | verdict |" and len(lines) == 2 + len(
        CLAIMS
    )
    assert "mean \\|r\\|" in lines[2]  # a bar inside a cell is escaped


def test_ledger_rows_refuse_what_the_records_do_not_hold():
    with pytest.raises(KeyError, match="03.gain_verdict"):
        ledger_rows(CLAIMS[:1], {k: v for k, v in RECORD.items() if k != "03.gain_verdict"})
    with pytest.raises(ValueError, match="pending"):
        ledger_rows(CLAIMS, RECORD, {"a": "somewhere"})
    with pytest.raises(ValueError, match="name no claim"):
        ledger_rows(CLAIMS, RECORD, {"z": "somewhere"})
    with pytest.raises(ValueError, match="share a key"):
        ledger_rows([CLAIMS[0], CLAIMS[0]], RECORD)


def test_a_cite_with_its_own_template():
    cite = Cite("r", "03.gain_verdict", "higher", ("03.gain_diff", "03.gain_n"), "{} over {} seeds")
    row = ledger_rows([Claim("k", "2.1", "C", cites=(cite,))], RECORD)[0]
    assert row["evidence"] == "03 · r: +0.10 over 10 seeds: **higher** (claimed: higher)"
