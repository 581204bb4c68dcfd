"""Typing test of the public API: mypy --strict must accept this file as written."""

from __future__ import annotations

import redditvision
from redditvision import RetryPolicy, is_transient

policy: RetryPolicy = RetryPolicy(on=is_transient, attempts=3, timeout=10.0)
evolved: RetryPolicy = policy.evolve(attempts=5)
error: redditvision.RedditVisionError = redditvision.ConfigError("missing user_agent")
status: int | str | None = error.status
