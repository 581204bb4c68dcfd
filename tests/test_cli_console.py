"""The CLI's stderr console does not hard-wrap lines when standard error is not a terminal."""

from __future__ import annotations

import pytest

from redditvision.cli._common import _stderr_console


def test_a_long_line_to_a_redirected_stderr_stays_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    message = "/a/long/path/" + "folder/" * 20 + "notes.txt cannot be decoded: " + "why " * 20
    console = _stderr_console()  # stderr is pytest's capture here: not a terminal
    console.print(message, highlight=False)
    assert capsys.readouterr().err == message + "\n"
