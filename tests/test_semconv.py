"""docs/telemetry.md and tasklens.semconv describe the same telemetry."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from tasklens import semconv

DOC = Path(__file__).resolve().parent.parent / "docs" / "telemetry.md"
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|(.*)\|\s*$")


def _sections() -> dict[str, list[tuple[str, list[str]]]]:
    """Table rows by the heading they sit under: (first-cell name, other cells)."""
    sections: dict[str, list[tuple[str, list[str]]]] = {}
    heading = ""
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            continue
        match = ROW.match(line)
        if match:
            cells = [cell.strip().strip("`") for cell in match.group(2).split("|")]
            sections.setdefault(heading, []).append((match.group(1), cells))
    return sections


SECTIONS = _sections()


def test_every_metric_is_documented_with_its_instrument_and_unit() -> None:
    instruments = set(typing.get_args(semconv.Instrument))
    documented = {name: cells for name, cells in SECTIONS["Metrics"] if cells and cells[0] in instruments}
    for spec in semconv.METRICS:
        assert spec.name in documented, f"{spec.name} missing from docs/telemetry.md"
        instrument, unit = documented[spec.name][0], documented[spec.name][1]
        assert (instrument, unit) == (spec.instrument, spec.unit), spec.name
        assert documented[spec.name][2].startswith(spec.description), spec.name
    assert set(documented) == {spec.name for spec in semconv.METRICS}


def test_every_attribute_is_documented_and_nothing_else() -> None:
    documented = {
        name
        for section in ("Span attributes", "Span events", "Metrics")
        for name, cells in SECTIONS[section]
        if cells and cells[0] in {"string", "int", "double", "boolean"}
    }
    assert documented == set(semconv.ATTRIBUTES)


def test_every_event_is_documented_and_nothing_else() -> None:
    documented = {name for name, cells in SECTIONS["Span events"] if cells and cells[0] == "process"}
    assert documented == set(semconv.EVENTS)


def test_every_dead_letter_reason_and_log_attribute_is_documented() -> None:
    text = DOC.read_text()
    for reason in typing.get_args(semconv.DeadLetterReason):
        assert f"`{reason}`" in text
    logged = {name for name, _ in SECTIONS["Logs"]}
    assert logged == {
        semconv.LOG_MESSAGE_ID,
        semconv.LOG_ACTOR_NAME,
        semconv.LOG_CELERY_TASK_ID,
        semconv.LOG_CELERY_TASK_NAME,
    }
    for value in (
        *typing.get_args(semconv.CeleryRejectReason),
        *typing.get_args(semconv.CeleryFailureState),
        *typing.get_args(semconv.TimeLimitKind),
    ):
        assert f"`{value}`" in text


def test_span_names_and_schema_match_the_doc() -> None:
    spans = {name for name, _ in SECTIONS["Spans"]}
    assert spans == {
        semconv.span_name(semconv.OPERATION_SEND, "{queue}"),
        semconv.span_name(semconv.OPERATION_PROCESS, "{queue}"),
    }
    assert semconv.SCHEMA_URL in DOC.read_text()
    assert f'message.options["{semconv.CONTEXT_OPTION}"]' in DOC.read_text()
    assert f'message.options["{semconv.READY_AT_OPTION}"]' in DOC.read_text()
    assert f"`{semconv.PUBLISHED_AT_HEADER}`" in DOC.read_text()
    assert "`traceparent`" in DOC.read_text()


@pytest.mark.parametrize(
    ("ours", "upstream_module", "upstream_name"),
    [
        (semconv.MESSAGING_SYSTEM, "attributes.messaging_attributes", "MESSAGING_SYSTEM"),
        (semconv.MESSAGING_OPERATION_TYPE, "attributes.messaging_attributes", "MESSAGING_OPERATION_TYPE"),
        (semconv.MESSAGING_OPERATION_NAME, "attributes.messaging_attributes", "MESSAGING_OPERATION_NAME"),
        (semconv.MESSAGING_DESTINATION_NAME, "attributes.messaging_attributes", "MESSAGING_DESTINATION_NAME"),
        (semconv.MESSAGING_MESSAGE_ID, "attributes.messaging_attributes", "MESSAGING_MESSAGE_ID"),
        (semconv.SENT_MESSAGES.name, "metrics.messaging_metrics", "MESSAGING_CLIENT_SENT_MESSAGES"),
        (semconv.CONSUMED_MESSAGES.name, "metrics.messaging_metrics", "MESSAGING_CLIENT_CONSUMED_MESSAGES"),
        (
            semconv.CLIENT_OPERATION_DURATION.name,
            "metrics.messaging_metrics",
            "MESSAGING_CLIENT_OPERATION_DURATION",
        ),
        (semconv.PROCESS_DURATION.name, "metrics.messaging_metrics", "MESSAGING_PROCESS_DURATION"),
    ],
)
def test_standard_names_equal_the_semantic_conventions(
    ours: str, upstream_module: str, upstream_name: str
) -> None:
    import importlib

    module = importlib.import_module(f"opentelemetry.semconv._incubating.{upstream_module}")
    assert getattr(module, upstream_name) == ours
