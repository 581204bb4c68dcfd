"""An OAuth token endpoint's error body is never printed: the status and the error code are.

Issue 12.12. A loopback token endpoint (pytest-httpserver, a real HTTP server) answers
praw's token request with hostile bodies; each body carries a marker that must appear in
no message, on the library's errors or on the command line's output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import praw
import praw.config
import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from redditvision import ConfigError, SourceError
from redditvision.cli import main
from redditvision.reddit import RedditImageSource

MARKER = "s3cret-echo-of-the-request"
USER_AGENT = "linux:redditvision-tests:0.1 (token errors)"
TOKEN_PATH = "/api/v1/access_token"


def _source(httpserver: HTTPServer) -> RedditImageSource:
    base = httpserver.url_for("").rstrip("/")
    reddit = praw.Reddit(
        client_id="dummy-id",
        client_secret="dummy-secret",
        user_agent=USER_AGENT,
        check_for_updates=False,
        oauth_url=base,
        reddit_url=base,
    )
    return RedditImageSource(reddit=reddit, retry=None)


@pytest.mark.parametrize(
    ("status", "body", "shown"),
    [
        (
            200,
            {"error": "invalid_grant", "error_description": MARKER},
            "OAuth error 'invalid_grant'",
        ),
        (
            400,
            {"error": "invalid_client", "error_description": MARKER},
            "OAuth error 'invalid_client'",
        ),
        (401, {"error": MARKER, "message": MARKER}, "HTTP 401, no registered OAuth error code"),
        (403, {"error": f"<script>{MARKER}"}, "HTTP 403, no registered OAuth error code"),
        (500, {"message": MARKER}, "HTTP 500"),
    ],
)
def test_token_endpoint_errors_show_status_and_code_never_the_body(
    httpserver: HTTPServer, status: int, body: dict[str, Any], shown: str
) -> None:
    httpserver.expect_request(TOKEN_PATH, method="POST").respond_with_json(body, status=status)
    with pytest.raises(ConfigError) as caught:
        list(_source(httpserver).submissions("BMW"))
    text = str(caught.value)
    assert shown in text
    assert MARKER not in text
    assert "dummy-secret" not in text
    assert caught.value.status == status


@pytest.mark.parametrize(
    "answer",
    [
        f"<html><body>{MARKER}</body></html>",  # not JSON at all
        json.dumps({"token_type": "bearer", "note": MARKER}),  # no access_token
        json.dumps([MARKER]),  # JSON of another shape
    ],
)
def test_a_malformed_token_answer_is_a_source_error_without_the_body(
    httpserver: HTTPServer, answer: str
) -> None:
    httpserver.expect_request(TOKEN_PATH, method="POST").respond_with_data(
        answer, status=200, content_type="application/json"
    )
    with pytest.raises(SourceError) as caught:
        list(_source(httpserver).submissions("BMW"))
    assert "malformed body" in caught.value.message
    assert MARKER not in str(caught.value)


def test_an_error_body_of_a_listing_is_not_printed_either(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TOKEN_PATH, method="POST").respond_with_json(
        {"access_token": "t", "token_type": "bearer", "expires_in": 3600, "scope": "*"}
    )
    httpserver.expect_request("/r/BMW/top").respond_with_json(
        {"message": MARKER, "explanation": MARKER, "reason": MARKER}, status=415
    )
    with pytest.raises(SourceError) as caught:
        list(_source(httpserver).submissions("BMW"))
    assert "HTTP 415" in str(caught.value)
    assert MARKER not in str(caught.value)


@pytest.fixture
def clean_praw_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No praw settings from this machine: no praw_* variables, no praw.ini."""
    import os

    for key in list(os.environ):
        if key.lower().startswith("praw_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.mark.usefixtures("clean_praw_env")
@pytest.mark.parametrize("verbosity", [[], ["-vv"]])
def test_collect_prints_the_status_and_code_of_a_refused_token_not_the_body(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, verbosity: list[str]
) -> None:
    httpserver.expect_request(TOKEN_PATH, method="POST").respond_with_json(
        {"error": "invalid_grant", "error_description": MARKER}, status=200
    )
    base = httpserver.url_for("").rstrip("/")
    (tmp_path / "praw.ini").write_text(
        f"[loopback]\nclient_id=an-id\nclient_secret=dummy-secret\nuser_agent={USER_AGENT}\n"
        f"oauth_url={base}\nreddit_url={base}\n"
    )
    monkeypatch.setenv("PRAW_ALLOW_ENDPOINT_OVERRIDE", "1")
    monkeypatch.setattr(praw.config.Config, "CONFIG", None)  # praw reads praw.ini once
    result = CliRunner().invoke(
        main, [*verbosity, "collect", "-s", "BMW", "--site", "loopback", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2, result.output
    assert "HTTP 200, OAuth error 'invalid_grant'" in result.output
    assert MARKER not in result.output
    assert "dummy-secret" not in result.output
