"""Submissions from the Reddit API through praw, streamed page by page."""

from __future__ import annotations

import configparser
import logging
import os
import re
from collections.abc import Iterator
from typing import Any

import praw
import praw.config
import praw.exceptions
import prawcore
import prawcore.exceptions
import requests

from redditvision._closing import Closeable
from redditvision.errors import ConfigError, RedditVisionError, SourceError
from redditvision.models import ImagePost
from redditvision.reddit._posts import CollectStats, PostFilters, _Collector
from redditvision.retry import (
    DEFAULT,
    RetryArg,
    RetryPolicy,
    parse_retry_after,
    resolve_retry,
)

__all__ = [
    "LISTING_CAP",
    "SEARCH_SORTS",
    "SORTS",
    "TIME_FILTERS",
    "RedditImageSource",
    "translate_reddit_error",
]

logger = logging.getLogger("redditvision.reddit")

SORTS = ("top", "hot", "new", "rising", "controversial")
"""Listing sorts of a subreddit (``/r/NAME/{sort}``)."""
SEARCH_SORTS = ("relevance", "hot", "top", "new", "comments")
"""Sorts of ``/r/NAME/search``."""
TIME_FILTERS = ("all", "year", "month", "week", "day", "hour")
"""The ``t`` parameter of top, controversial and search listings."""
LISTING_CAP = 1000
"""Reddit serves at most about 1,000 items of one listing (10 pages of 100), whatever the
``limit``; to go further back use several time filters, search, or an offline dump."""

_SUBREDDIT_NAME = re.compile(r"^[A-Za-z0-9_]{2,21}(\+[A-Za-z0-9_]{2,21})*$")
_END = object()


def _is_rate_limited(exc: BaseException) -> bool:
    return isinstance(exc, SourceError) and exc.status == 429


class _TimeoutRequestor(prawcore.Requestor):
    """A prawcore requestor whose every HTTP call uses one timeout (praw passes none)."""

    def request(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        return super().request(*args, timeout=self.timeout, **kwargs)


_REQUIRED_SETTINGS = ("client_id", "client_secret", "user_agent")
"""The settings praw needs for read-only access (``praw.Reddit``; client_secret may be None)."""


def _missing_settings_message(praw_message: str, site: str | None, overrides: Any) -> str:
    """Name every missing praw setting and every way to set it (never a value)."""
    try:
        section = site or os.getenv("praw_site") or "DEFAULT"  # noqa: SIM112 (praw's name)
        config = praw.config.Config(section, None, **dict(overrides))
        missing = [
            name
            for name in _REQUIRED_SETTINGS
            if getattr(config, name) is config.CONFIG_NOT_SET
            or (name != "client_secret" and getattr(config, name) is None)
        ]
    except (configparser.Error, TypeError):  # praw already read it once; be safe anyway
        missing = []
    if not missing:
        match = re.search(r"setting '(\w+)'", praw_message)
        missing = [match.group(1) if match else "client_id"]
    names = ", ".join(missing)
    return (
        f"Reddit setting(s) missing: {names}. Set the environment variable(s) "
        + ", ".join(f"praw_{name}" for name in missing)
        + f", or add {names} to a praw.ini site ([DEFAULT], or the section praw_site names; "
        "praw.ini in the working directory or ~/.config/), or in Python pass "
        + ", ".join(f"{name}=..." for name in missing)
        + " (create a 'script' app at https://www.reddit.com/prefs/apps for the id and "
        "secret; an installed app passes client_secret=None)"
    )


class RedditImageSource(Closeable):
    """Image submissions of subreddits, read through the Reddit API with praw.

    Listings are paged by praw (100 submissions a request) and streamed: nothing holds a
    whole listing. Each submission's fields go through the same
    :func:`~redditvision.reddit.post_from_submission_data` as saved listings do, so the
    offline sources yield the same posts for the same JSON.

    Args:
        reddit: A ``praw.Reddit``; read-only application access is enough. The source
            does not close it (it is the caller's).
        filters: Which posts and media to keep (default :class:`PostFilters`: NSFW,
            stickied and removed posts excluded, posts without images not yielded).
        retry: Policy for transient failures of a listing page (HTTP 429 with its
            ``Retry-After``, 5xx after prawcore's own retries, network errors);
            :data:`~redditvision.retry.DEFAULT` is :attr:`default_retry` (429 only, 5
            attempts within 300 s), ``None`` disables it. Fetching a page is a GET, safe
            to repeat.

    Attributes:
        stats: :class:`CollectStats` accumulated over every :meth:`submissions` call.
    """

    default_retry = RetryPolicy(on=_is_rate_limited, attempts=5, timeout=300.0)
    """The policy used when ``retry=DEFAULT``: HTTP 429 only, honouring ``Retry-After``.

    prawcore already retries 5xx answers and network failures itself (up to three
    attempts per request), but never a 429; this layer adds just that, so retries do not
    multiply. A policy built with :func:`~redditvision.retry.is_transient` also retries
    5xx and network errors after prawcore has given up.
    """

    def __init__(
        self,
        *,
        reddit: praw.Reddit,
        filters: PostFilters | None = None,
        retry: RetryArg = DEFAULT,
    ) -> None:
        self._reddit = reddit
        self.filters = filters if filters is not None else PostFilters()
        self._retry = resolve_retry(retry, self.default_retry)
        self.stats = CollectStats()
        self._owned_session: requests.Session | None = None
        self._closed = False

    @classmethod
    def from_env(
        cls,
        site: str | None = None,
        *,
        filters: PostFilters | None = None,
        retry: RetryArg = DEFAULT,
        timeout: float | None = 16.0,
        **overrides: Any,
    ) -> RedditImageSource:
        """Build a source the way praw configures itself: ``praw.ini`` and ``praw_*``.

        Settings come from the ``praw.ini`` section ``site`` (default: the ``praw_site``
        environment variable, else ``DEFAULT``), overridden by ``praw_client_id``,
        ``praw_client_secret``, ``praw_user_agent``... environment variables, overridden
        by ``overrides``. Access is read-only application access (no username/password
        needed); an installed app may pass ``client_secret=None``.

        Args:
            site: The ``praw.ini`` section name, or None.
            filters: As for the constructor.
            retry: As for the constructor.
            timeout: Seconds to wait for each HTTP response (default 16, prawcore's);
                None keeps prawcore's.
            **overrides: praw settings (``client_id``, ``client_secret``,
                ``user_agent``, ...), as keyword arguments of ``praw.Reddit``.

        Returns:
            A source owning its HTTP session; :meth:`close` closes it.

        Raises:
            ConfigError: ``client_id``, ``client_secret`` or ``user_agent`` is missing,
                the user agent is too short, or the ``praw.ini`` section does not exist.
                The message names every missing setting and how to set it (environment,
                ``praw.ini``, keyword), never a value.
        """
        session = requests.Session()
        requestor_kwargs: dict[str, Any] = {"session": session}
        if timeout is not None:
            requestor_kwargs["timeout"] = timeout
        try:
            reddit = praw.Reddit(
                site,
                requestor_class=_TimeoutRequestor,
                requestor_kwargs=requestor_kwargs,
                check_for_updates=False,
                check_for_async=False,
                **overrides,
            )
            reddit.read_only = True
        except praw.exceptions.MissingRequiredAttributeException as exc:
            session.close()
            raise ConfigError(_missing_settings_message(str(exc), site, overrides)) from exc
        except prawcore.exceptions.InvalidInvocation as exc:
            session.close()
            raise ConfigError(
                "Reddit user_agent is not descriptive enough (7+ characters): use "
                "'<platform>:<app ID>:<version> (by u/<username>)' as Reddit's API rules ask"
            ) from exc
        except configparser.NoSectionError as exc:
            session.close()
            raise ConfigError(
                f"praw.ini has no section [{site}]; add it or pass site=None"
            ) from exc
        source = cls(reddit=reddit, filters=filters, retry=retry)
        source._owned_session = session
        return source

    def submissions(
        self,
        subreddit: str,
        *,
        sort: str = "top",
        time_filter: str = "all",
        limit: int | None = 100,
        query: str | None = None,
        retry: RetryArg = DEFAULT,
    ) -> Iterator[ImagePost]:
        """Stream the kept image posts of a subreddit listing or search.

        Args:
            subreddit: The name without ``r/`` (``"BMW"``); ``"a+b"`` combines
                subreddits; ``"all"`` and ``"popular"`` work too.
            sort: ``top`` (default), ``hot``, ``new``, ``rising`` or ``controversial``;
                with ``query``: ``relevance``, ``hot``, ``top``, ``new`` or ``comments``.
            time_filter: For top, controversial and search: ``all`` (default), ``year``,
                ``month``, ``week``, ``day``, ``hour``. Ignored by the other sorts.
            limit: Submissions to read (before filtering), default 100. None reads as
                many as Reddit gives: about 1,000 at most (:data:`LISTING_CAP`).
            query: Search the subreddit for this text (Reddit search syntax) instead of
                listing it.
            retry: Retry policy for this call; :data:`DEFAULT` uses the source's.

        Returns:
            An iterator of posts; the first page is requested on the first ``next()``.

        Raises:
            ConfigError: Unknown ``sort``/``time_filter``, a malformed subreddit name or
                ``limit`` below 1 (raised at once), or Reddit refused the credentials
                (while iterating).
            SourceError: The API failed (while iterating): ``status`` holds the HTTP
                status, ``retry_after`` the seconds of a 429's ``Retry-After``; a missing,
                private or banned subreddit says so.
        """
        name = subreddit.strip().removeprefix("/").removeprefix("r/")
        if not _SUBREDDIT_NAME.match(name):
            raise ConfigError(
                f"subreddit name {subreddit!r} is not valid: use 2-21 letters, digits or "
                "underscores without 'r/', or 'a+b' for several"
            )
        allowed = SEARCH_SORTS if query is not None else SORTS
        if sort not in allowed:
            raise ConfigError(f"sort {sort!r} is not one of {', '.join(allowed)}")
        if time_filter not in TIME_FILTERS:
            raise ConfigError(
                f"time_filter {time_filter!r} is not one of {', '.join(TIME_FILTERS)}"
            )
        if limit is not None and limit < 1:
            raise ConfigError(f"limit must be at least 1 or None, got {limit}")
        if self._closed:
            raise ConfigError("this RedditImageSource is closed; make a new one")
        policy = self._retry if retry is DEFAULT else resolve_retry(retry, None)
        return self._stream(name, sort, time_filter, limit, query, policy)

    def _stream(
        self,
        name: str,
        sort: str,
        time_filter: str,
        limit: int | None,
        query: str | None,
        policy: RetryPolicy | None,
    ) -> Iterator[ImagePost]:
        what = f"r/{name} {'search ' + repr(query) + ' ' if query is not None else ''}{sort}"
        listing = self._listing(name, sort, time_filter, limit, query)
        collector = _Collector(self.filters, self.stats)
        while True:
            if policy is None:
                item = _next_item(listing, what)
            else:
                item = policy.call(_next_item, listing, what)
            if item is _END:
                return
            data = _submission_data(item)
            post = collector.take(data, f"{what}: t3_{data.get('id')}")
            if post is not None:
                yield post

    def _listing(
        self, name: str, sort: str, time_filter: str, limit: int | None, query: str | None
    ) -> Iterator[Any]:
        subreddit = self._reddit.subreddit(name)
        if query is not None:
            return iter(subreddit.search(query, sort=sort, time_filter=time_filter, limit=limit))
        if sort in ("top", "controversial"):
            return iter(getattr(subreddit, sort)(time_filter=time_filter, limit=limit))
        return iter(getattr(subreddit, sort)(limit=limit))

    def close(self) -> None:
        """Close the HTTP session this source made in :meth:`from_env`; safe twice.

        An injected ``praw.Reddit`` is left open: it belongs to the caller.
        """
        if self._closed:
            return
        self._closed = True
        if self._owned_session is not None:
            self._owned_session.close()
            self._owned_session = None

    def __repr__(self) -> str:
        # Never the praw config: it holds the client secret.
        return f"RedditImageSource(filters={self.filters!r}, closed={self._closed})"


def _next_item(listing: Iterator[Any], what: str) -> Any:
    try:
        return next(listing, _END)
    except (prawcore.exceptions.PrawcoreException, praw.exceptions.PRAWException) as exc:
        if isinstance(exc, prawcore.exceptions.OAuthException):
            # prawcore's message ends with the body's error_description; the cause is
            # kept (type, response), its text is not, as tracebacks print it (-vv).
            code = _oauth_error_code(exc, None) or "an unregistered"
            exc.args = (f"{code} error processing request (description withheld)",)
        raise translate_reddit_error(exc, what) from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # prawcore reads the token response as `response.json()["access_token"]`...: a
        # body that is not JSON, or JSON of another shape, escapes as one of these.
        raise SourceError(
            f"Reddit answered with a malformed body while reading {what} "
            f"({type(exc).__name__}: not the JSON an OAuth token endpoint or a listing "
            "sends); the body is not shown, as a token endpoint's may hold credentials",
            service="reddit",
        ) from exc


# The error codes of RFC 6749 section 5.2 (token endpoint) and 4.1.2.1 (authorization):
# the only text of a token endpoint's error body that is printed.
_OAUTH_ERROR_CODES = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
        "unsupported_response_type",
        "server_error",
        "temporarily_unavailable",
    }
)
_TOKEN_PATH = "/api/v1/access_token"  # noqa: S105 - a URL path, not a secret


def _oauth_error_code(exc: Exception, response: Any) -> str | None:
    """The registered OAuth error code of a token endpoint's answer, else None.

    Anything else in the body (``error_description``, free text, an unregistered code)
    is a stranger's text and may echo the request: never shown.
    """
    code: Any = getattr(exc, "error", None)
    if code is None and response is not None:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        code = payload.get("error") if isinstance(payload, dict) else None
    return code if isinstance(code, str) and code in _OAUTH_ERROR_CODES else None


def _is_token_response(response: Any) -> bool:
    url = getattr(response, "url", None)
    return isinstance(url, str) and _TOKEN_PATH in url


def _submission_data(submission: Any) -> dict[str, Any]:
    """The submission's JSON fields from a praw ``Submission`` (praw objectifies three)."""
    data = {key: value for key, value in vars(submission).items() if not key.startswith("_")}
    author = data.get("author")
    data["author"] = None if author is None else str(getattr(author, "name", author))
    subreddit = data.get("subreddit")
    if subreddit is not None and not isinstance(subreddit, str):
        data["subreddit"] = str(getattr(subreddit, "display_name", subreddit))
    data.pop("poll_data", None)
    data.pop("comment_limit", None)
    data.pop("comment_sort", None)
    return data


def translate_reddit_error(exc: Exception, what: str) -> RedditVisionError:
    """Translate a prawcore or praw exception into a redditvision error.

    Args:
        exc: The exception praw or prawcore raised.
        what: The listing concerned, for the message (``"r/BMW top"``).

    Messages hold the HTTP status and, for the token endpoint, the registered OAuth error
    code (RFC 6749 5.2), never the body of an answer: a token endpoint's may echo
    credentials, and every body is a stranger's text.

    Returns:
        :class:`ConfigError` for refused credentials (HTTP 401, any error of the token
        endpoint ``/api/v1/access_token``, OAuth errors), else a
        :class:`SourceError` with ``service="reddit"``, the HTTP ``status`` when there was
        a response, ``retry_after`` from a 429's ``Retry-After``, and ``transient`` for
        429, 5xx and network failures.
    """
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) if response is not None else None
    status = status if isinstance(status, int) else None
    if isinstance(exc, prawcore.exceptions.TooManyRequests):
        seconds = parse_retry_after(exc.retry_after)
        return SourceError(
            f"Reddit rate limit reached while reading {what} (HTTP 429); wait and retry",
            service="reddit",
            status=429,
            retry_after=seconds,
            transient=True,
        )
    token = isinstance(exc, prawcore.exceptions.OAuthException) or _is_token_response(response)
    if token or status == 401:
        code = _oauth_error_code(exc, response) if token else None
        said = f"HTTP {status}" if status is not None else "no HTTP status"
        if token:
            said += f", OAuth error {code!r}" if code else ", no registered OAuth error code"
        return ConfigError(
            f"Reddit refused the credentials while reading {what} ({said}; the answer's "
            "body is not shown); check client_id, client_secret and the app type at "
            "https://www.reddit.com/prefs/apps",
            service="reddit",
            status=status,
        )
    if isinstance(exc, prawcore.exceptions.Redirect):
        return SourceError(
            f"{what}: the subreddit does not exist (Reddit redirected to {exc.path})",
            service="reddit",
            status=status,
        )
    if isinstance(exc, prawcore.exceptions.NotFound):
        return SourceError(
            f"{what}: not found (HTTP 404); check the subreddit name", service="reddit", status=404
        )
    if isinstance(exc, prawcore.exceptions.Forbidden):
        return SourceError(
            f"{what}: forbidden (HTTP 403); the subreddit may be private, quarantined or banned",
            service="reddit",
            status=403,
        )
    if isinstance(exc, prawcore.exceptions.ServerError):
        return SourceError(
            f"Reddit server error while reading {what} (HTTP {status})",
            service="reddit",
            status=status,
            transient=True,
        )
    if isinstance(exc, prawcore.exceptions.RequestException):
        original = exc.original_exception
        return SourceError(
            f"network failure while reading {what}: {type(original).__name__}: "
            f"{str(original)[:200]}",
            service="reddit",
            transient=True,
        )
    if isinstance(exc, prawcore.exceptions.ResponseException):
        return SourceError(
            f"Reddit answered HTTP {status} while reading {what}",
            service="reddit",
            status=status,
            transient=status is not None and status >= 500,
        )
    # praw's API exceptions carry text from Reddit's answer: only their type is shown.
    return SourceError(
        f"praw failed while reading {what}: {type(exc).__name__}", service="reddit", status=status
    )
