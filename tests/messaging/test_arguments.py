"""capture_args: what is recorded, what is redacted, how much."""

from __future__ import annotations

import json

from tasklens.messaging.arguments import MAX_ARGS_LENGTH, REDACTED, format_arguments


def test_secrets_are_redacted_at_any_depth() -> None:
    text = format_arguments(
        True,
        ("user@example.com", {"api_key": "k1", "nested": {"Password": "p", "ok": 1}}),
        {"token": "t", "Authorization": "Bearer x", "amount": 12},
    )
    assert text is not None
    recorded = json.loads(text)
    assert recorded["args"][1]["api_key"] == REDACTED
    assert recorded["args"][1]["nested"] == {"Password": REDACTED, "ok": 1}
    assert recorded["kwargs"] == {"token": REDACTED, "Authorization": REDACTED, "amount": 12}
    assert "k1" not in text and "Bearer" not in text


def test_long_arguments_are_truncated() -> None:
    text = format_arguments(True, ("x" * 10_000,), {})
    assert text is not None and len(text) == MAX_ARGS_LENGTH and text.endswith("…")


def test_a_callable_chooses_what_to_record() -> None:
    assert format_arguments(
        lambda args, kwargs: {"order": kwargs["order"]}, (), {"order": 7, "card": "4111"}
    ) == ('{"order":7}')
    assert format_arguments(False, (1,), {}) is None
