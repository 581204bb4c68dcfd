"""The injection-safe CSV writer: what a spreadsheet would evaluate is written as text."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from redditvision._csv import restore_cell, safe_cell, write_csv


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("'Tis the season", "''Tis the season"),
        ("-0.5", "'-0.5"),
        ("BMW M3 2012", "BMW M3 2012"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_safe_cell_prefixes_text_a_spreadsheet_would_evaluate(value: str, written: str) -> None:
    assert safe_cell(value) == written


def test_safe_cell_keeps_numbers_booleans_and_none_readable() -> None:
    assert [safe_cell(v) for v in (-0.5, 3, -7, 1e-07, True, False, None)] == [
        "-0.5",
        "3",
        "-7",
        "1e-07",
        "true",
        "false",
        "",
    ]


def test_safe_cell_writes_non_finite_floats_as_neutralized_text() -> None:
    assert [safe_cell(v) for v in (float("nan"), float("-inf"), float("inf"))] == [
        "nan",
        "'-inf",
        "inf",
    ]


@pytest.mark.parametrize("text", ["=1+1", "''x", "'x", "-", "plain", "", "\t", "'", "@a", "-0.5"])
def test_restore_cell_undoes_safe_cell(text: str) -> None:
    assert restore_cell(safe_cell(text)) == text


def test_write_csv_neutralizes_a_reddit_title_and_quotes_every_cell(tmp_path: Path) -> None:
    target = tmp_path / "posts.csv"
    count = write_csv(
        target,
        ["title", "score", "note"],
        [['=HYPERLINK("http://x")', -0.5, "a;=1+1"], ["fine", 2, None]],
    )
    assert count == 2
    assert target.read_text(encoding="utf-8").splitlines() == [
        '"title","score","note"',
        '"\'=HYPERLINK(""http://x"")","-0.5","a;=1+1"',
        '"fine","2",""',
    ]
    rows = list(csv.reader(target.open(encoding="utf-8", newline="")))
    assert rows[1][0] == '\'=HYPERLINK("http://x")'
    assert restore_cell(rows[1][0]) == '=HYPERLINK("http://x")'


def test_write_csv_replaces_a_file_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old\n", encoding="utf-8")
    write_csv(target, ["a"], [["new"]])
    assert target.read_text(encoding="utf-8") == '"a"\n"new"\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_write_csv_leaves_the_old_file_when_a_row_fails(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old\n", encoding="utf-8")

    def rows() -> list[list[str]]:
        raise RuntimeError("row source failed")

    with pytest.raises(RuntimeError, match="row source failed"):
        write_csv(target, ["a"], (row for row in rows()))
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_write_csv_writes_to_an_open_stream() -> None:
    stream = io.StringIO()
    assert write_csv(stream, ["h"], [["@x"]]) == 1
    assert stream.getvalue() == '"h"\n"\'@x"\n'
