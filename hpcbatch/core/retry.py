"""AWS Batch retry rules: ``retryStrategy.attempts`` and ``evaluateOnExit``.

A rule matches when every condition it gives matches; the first matching rule decides RETRY or
EXIT; when no rule matches, the attempt is retried (AWS's documented default). Patterns are exact
strings with an optional single trailing ``*`` meaning "starts with".
"""

from __future__ import annotations

from hpcbatch.core.model import RetryRule, RetryStrategy

TIMEOUT_REASON = "Job attempt duration exceeded timeout"


def glob_match(pattern: str, value: str | None) -> bool:
    if value is None:
        return False
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def rule_matches(
    rule: RetryRule, exit_code: int | None, reason: str | None, status_reason: str | None
) -> bool:
    checks = (
        (rule.on_exit_code, None if exit_code is None else str(exit_code)),
        (rule.on_reason, reason),
        (rule.on_status_reason, status_reason),
    )
    given = [(p, v) for p, v in checks if p is not None]
    return bool(given) and all(glob_match(p, v) for p, v in given)


def should_retry(
    strategy: RetryStrategy,
    attempts_made: int,
    exit_code: int | None,
    reason: str | None,
    status_reason: str | None,
) -> tuple[bool, str]:
    """Whether a failed attempt is retried, and why (for the job's story)."""
    if reason == TIMEOUT_REASON:
        return False, "timed-out attempts are not retried"
    if attempts_made >= strategy.attempts:
        return False, f"attempt {attempts_made} of {strategy.attempts}: no attempts left"
    for i, rule in enumerate(strategy.rules):
        if rule_matches(rule, exit_code, reason, status_reason):
            if rule.action == "EXIT":
                return False, f"evaluateOnExit[{i}] says EXIT"
            return True, f"evaluateOnExit[{i}] says RETRY"
    return True, f"attempt {attempts_made} of {strategy.attempts} failed; retrying"
