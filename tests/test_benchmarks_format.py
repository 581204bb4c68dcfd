"""The benchmark table shows medians and spreads of raw runs and never a skipped row as a value."""

from __future__ import annotations

import pytest
from benchmarks import measured, rate_runs, repeat, skipped, summary
from benchmarks.__main__ import _check, _table


def test_a_repeated_measurement_keeps_every_run_and_reports_the_median() -> None:
    row = measured("t", "speed", [3.0, 1.0, 2.0, 10.0, 2.5], "items/s", "five runs")
    assert row["runs"] == [3.0, 1.0, 2.0, 10.0, 2.5]  # raw, in run order
    assert row["value"] == 2.5  # the median, not the best (10.0)
    assert summary(row) == {"value": 2.5, "low": 1.0, "high": 10.0, "n": 5}
    assert rate_runs(10, [2.0, 0.5]) == [5.0, 20.0]
    assert len(repeat(lambda: None, 3)) == 3


def test_the_table_shows_median_spread_and_runs_and_leaves_skipped_rows_out() -> None:
    results = {
        "topics": {
            "t": {
                "rows": [
                    measured("t", "speed", [1.0, 2.0, 4.0], "items/s"),
                    {"benchmark": "t", "metric": "once", "value": 7.0, "unit": "s"},
                    skipped("t", "absent", "no data here"),
                ],
                "date": "2026-12-02",
                "machine": "x86_64, 2 cores",
                "load_average": 1.5,
            }
        }
    }
    table = _table(results)
    speed = next(line for line in table.splitlines() if line.startswith("t ") and "speed" in line)
    assert speed.split()[2:7] == ["2", "1", "-", "4", "3"]  # median 2, spread 1 - 4, 3 runs
    once = next(line for line in table.splitlines() if "once" in line)
    assert once.split()[2:5] == ["7", "-", "1"]
    assert "absent" not in table
    assert "no data here" not in table
    assert "t 1.5" in table  # the load the topic was measured under


def test_a_row_without_a_number_is_refused() -> None:
    _check("t", skipped("t", "x", "why"))
    with pytest.raises(SystemExit, match="is not a number"):
        _check("t", {"benchmark": "t", "metric": "x", "value": "skipped", "unit": ""})
    with pytest.raises(SystemExit, match="lacks"):
        _check("t", {"benchmark": "t", "metric": "x"})
