"""RedditImageSource works through praw itself: recorded Reddit traffic and loopback errors."""

from __future__ import annotations

import json
from pathlib import Path

import praw
import prawcore
import pytest
import requests
import vcr
from pytest_httpserver import HTTPServer

from redditvision import ConfigError, SourceError, retry
from redditvision.reddit import (
    ListingFileSource,
    PostFilters,
    RedditImageSource,
    translate_reddit_error,
)

USER_AGENT = "linux:redditvision-tests:0.1 (replay)"
TOKEN = {"access_token": "dummy-token", "token_type": "bearer", "expires_in": 86400, "scope": "*"}


def _replay(reddit_data: Path, name: str) -> vcr.cassette.Cassette:
    # Match on method and path only: praw may order or extend query parameters.
    recorder = vcr.VCR(record_mode="none", match_on=["method", "path"])
    return recorder.use_cassette(str(reddit_data / "cassettes" / f"{name}.json"))


def _reddit(**settings: str) -> praw.Reddit:
    return praw.Reddit(
        client_id="dummy-id",
        client_secret="dummy-secret",
        user_agent=USER_AGENT,
        check_for_updates=False,
        **settings,
    )


def test_popular_hot_through_praw_equals_the_offline_listing(reddit_data: Path) -> None:
    with _replay(reddit_data, "TestSubmission.test_hide_multiple_in_batches") as cassette:
        with RedditImageSource(reddit=_reddit()) as source:
            posts = list(source.submissions("popular", sort="hot", limit=100))
        # The OAuth token request and one listing page of 100.
        assert cassette.play_count == 2
    offline = ListingFileSource(
        [reddit_data / "listings" / "TestSubmission.test_hide_multiple_in_batches.0.json"]
    )
    assert posts == list(offline.submissions())
    assert source.stats == offline.stats
    assert (source.stats.posts_seen, source.stats.posts_with_images, source.stats.images) == (
        100,
        64,
        109,
    )
    # praw's Redditor and Subreddit objects are turned back into their names.
    assert all(isinstance(post.subreddit, str) and post.subreddit for post in posts)
    assert all(post.author is None or isinstance(post.author, str) for post in posts)


def test_askreddit_top_all_through_praw_gives_no_images(reddit_data: Path) -> None:
    with _replay(reddit_data, "TestSubredditListings.test_top"):
        source = RedditImageSource(reddit=_reddit(), filters=PostFilters(require_images=False))
        posts = list(source.submissions("askreddit", sort="top", time_filter="all", limit=100))
    assert len(posts) == 94
    assert source.stats.posts_filtered == {"nsfw": 6}
    assert all(post.subreddit.lower() == "askreddit" and not post.media for post in posts)


@pytest.fixture
def loopback_reddit(httpserver: HTTPServer) -> praw.Reddit:
    httpserver.expect_request("/api/v1/access_token", method="POST").respond_with_json(TOKEN)
    base = httpserver.url_for("").rstrip("/")
    return _reddit(oauth_url=base, reddit_url=base)


def _listing_page(reddit_data: Path) -> str:
    path = reddit_data / "listings" / "TestSubreddit.test_submit_image.0.json"
    return path.read_text(encoding="utf-8")


def test_429_is_retried_after_retry_after_then_the_page_is_read(
    httpserver: HTTPServer, loopback_reddit: praw.Reddit, reddit_data: Path
) -> None:
    httpserver.expect_oneshot_request("/r/BMW/hot").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "7"}
    )
    httpserver.expect_oneshot_request("/r/BMW/hot").respond_with_data(
        _listing_page(reddit_data), content_type="application/json"
    )
    source = RedditImageSource(reddit=loopback_reddit)
    posts = list(source.submissions("BMW", sort="hot", limit=5))
    assert [post.id for post in posts] == ["16xb01r"]
    sleeps = retry.recorded_sleeps()
    assert len(sleeps) == 1
    assert sleeps[0] >= 7


def test_429_without_retry_is_a_transient_source_error_with_retry_after(
    httpserver: HTTPServer, loopback_reddit: praw.Reddit
) -> None:
    httpserver.expect_request("/r/BMW/top").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "30"}
    )
    source = RedditImageSource(reddit=loopback_reddit, retry=None)
    with pytest.raises(SourceError) as info:
        list(source.submissions("BMW"))
    error = info.value
    assert (error.service, error.status, error.retry_after, error.transient) == (
        "reddit",
        429,
        30.0,
        True,
    )
    assert retry.recorded_sleeps() == []


def test_private_subreddit_is_a_permanent_error_and_not_retried(
    httpserver: HTTPServer, loopback_reddit: praw.Reddit
) -> None:
    httpserver.expect_request("/r/secretclub/new").respond_with_json(
        {"reason": "private", "message": "Forbidden", "error": 403}, status=403
    )
    source = RedditImageSource(reddit=loopback_reddit)
    with pytest.raises(SourceError, match="private") as info:
        list(source.submissions("secretclub", sort="new"))
    assert (info.value.status, info.value.transient) == (403, False)
    assert retry.recorded_sleeps() == []


def test_search_sends_the_query_and_time_filter(
    httpserver: HTTPServer, loopback_reddit: praw.Reddit, reddit_data: Path
) -> None:
    httpserver.expect_request(
        "/r/BMW/search/",
        query_string={
            "q": "e30 coupe",
            "sort": "new",
            "t": "year",
            "restrict_sr": "True",
            "syntax": "lucene",
            "limit": "10",
            "raw_json": "1",
        },
    ).respond_with_data(_listing_page(reddit_data), content_type="application/json")
    source = RedditImageSource(reddit=loopback_reddit)
    posts = list(
        source.submissions("BMW", query="e30 coupe", sort="new", time_filter="year", limit=10)
    )
    assert len(posts) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sort": "best"}, "sort 'best'"),
        ({"time_filter": "decade"}, "time_filter 'decade'"),
        ({"limit": 0}, "limit must be at least 1"),
    ],
)
def test_bad_listing_arguments_fail_at_once(kwargs: dict[str, object], message: str) -> None:
    source = RedditImageSource(reddit=_reddit())
    with pytest.raises(ConfigError, match=message):
        source.submissions("BMW", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not valid"):
        source.submissions("r/has space")


@pytest.fixture
def clean_praw_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.lower().startswith("praw_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.mark.usefixtures("clean_praw_env")
def test_from_env_names_the_missing_setting_without_leaking_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("praw_client_secret", "s3cret-value-123")
    monkeypatch.setenv("praw_user_agent", USER_AGENT)
    with pytest.raises(ConfigError, match=r"missing: client_id\. ") as info:
        RedditImageSource.from_env()
    assert "s3cret-value-123" not in str(info.value) + repr(info.value)
    monkeypatch.setenv("praw_client_id", "an-id")
    monkeypatch.delenv("praw_user_agent")
    with pytest.raises(ConfigError, match=r"missing: user_agent\. "):
        RedditImageSource.from_env()


@pytest.mark.usefixtures("clean_praw_env")
def test_from_env_without_any_setting_lists_all_three_and_how_to_set_them() -> None:
    with pytest.raises(ConfigError) as info:
        RedditImageSource.from_env()
    message = str(info.value)
    assert "missing: client_id, client_secret, user_agent." in message
    assert "praw_client_id, praw_client_secret, praw_user_agent" in message
    assert "praw.ini" in message


@pytest.mark.usefixtures("clean_praw_env")
def test_from_env_reads_praw_variables_and_closes_twice(
    monkeypatch: pytest.MonkeyPatch, httpserver: HTTPServer, reddit_data: Path
) -> None:
    httpserver.expect_request("/api/v1/access_token", method="POST").respond_with_json(TOKEN)
    httpserver.expect_request("/r/BMW/top").respond_with_data(
        _listing_page(reddit_data), content_type="application/json"
    )
    base = httpserver.url_for("").rstrip("/")
    monkeypatch.setenv("praw_client_id", "an-id")
    monkeypatch.setenv("praw_client_secret", "s3cret-value-123")
    monkeypatch.setenv("praw_user_agent", USER_AGENT)
    source = RedditImageSource.from_env(oauth_url=base, reddit_url=base, timeout=5)
    assert "s3cret" not in repr(source)
    with source:
        assert len(list(source.submissions("BMW", limit=1))) == 1
    source.close()
    with pytest.raises(ConfigError, match="closed"):
        source.submissions("BMW")
    assert json.loads(_listing_page(reddit_data))["kind"] == "Listing"


def test_refused_credentials_are_a_config_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/access_token", method="POST").respond_with_json(
        {"message": "Unauthorized", "error": 401}, status=401
    )
    base = httpserver.url_for("").rstrip("/")
    source = RedditImageSource(reddit=_reddit(oauth_url=base, reddit_url=base))
    with pytest.raises(ConfigError, match="refused the credentials") as info:
        list(source.submissions("BMW"))
    assert info.value.status == 401
    assert "dummy-secret" not in str(info.value)


def test_server_errors_and_network_failures_are_transient() -> None:
    response = requests.Response()
    response.status_code = 503
    server = translate_reddit_error(prawcore.exceptions.ServerError(response), "r/BMW top")
    network = translate_reddit_error(
        prawcore.exceptions.RequestException(requests.ConnectionError("refused"), (), {}),
        "r/BMW top",
    )
    assert (type(server), server.status, server.transient) == (SourceError, 503, True)
    assert (type(network), network.status, network.transient) == (SourceError, None, True)
    assert "ConnectionError" in str(network)


def test_missing_subreddit_says_it_does_not_exist(
    httpserver: HTTPServer, loopback_reddit: praw.Reddit
) -> None:
    httpserver.expect_request("/r/nosuchsub/top").respond_with_data(
        "",
        status=302,
        headers={"Location": "https://www.reddit.com/subreddits/search.json?q=nosuchsub"},
    )
    source = RedditImageSource(reddit=loopback_reddit)
    with pytest.raises(SourceError, match="does not exist") as info:
        list(source.submissions("nosuchsub"))
    assert info.value.transient is False
