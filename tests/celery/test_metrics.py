"""Metrics: a known scenario gives exactly its counts, with bounded attributes."""

from __future__ import annotations

from typing import Any

from tasklens import semconv
from tasklens.celery import CeleryInstrumentor
from tests.celery.conftest import AppRig
from tests.dramatiq.conftest import Telemetry

#: Successful tasks, failing tasks, retries of each failing task, and extra sends of a no-op task.
S, F, R, K = 5, 3, 2, 4


def test_successes_failures_retries_and_sends_give_exactly_their_counts(
    rig: AppRig, telemetry: Telemetry, instrumented: CeleryInstrumentor
) -> None:
    @rig.task(name=f"{rig.queue_name}.ok")
    def ok() -> None:
        pass

    @rig.task(bind=True, name=f"{rig.queue_name}.doomed", max_retries=R, default_retry_delay=0)
    def doomed(self: Any) -> None:
        raise self.retry(exc=ValueError("always"))

    @rig.task(name=f"{rig.queue_name}.noop")
    def noop() -> None:
        pass

    for _ in range(S):
        ok.delay()
    for _ in range(F):
        doomed.delay()
    for _ in range(K):
        noop.delay()
    rig.run(telemetry, S + F * (R + 1) + K)

    def total(spec: semconv.MetricSpec, **attributes: Any) -> float:
        return telemetry.metric_total(spec.name, **attributes)

    ok_name, doomed_name = {"celery__task__name": ok.name}, {"celery__task__name": doomed.name}
    assert total(semconv.SENT_MESSAGES) == S + F * (R + 1) + K
    assert total(semconv.SENT_MESSAGES, **doomed_name) == F * (R + 1)
    assert total(semconv.CLIENT_OPERATION_DURATION) == S + F * (R + 1) + K
    assert total(semconv.CONSUMED_MESSAGES) == S + F * (R + 1) + K
    assert total(semconv.CONSUMED_MESSAGES, **ok_name) == S
    assert total(semconv.PROCESS_DURATION, **ok_name) == S
    # Every attempt of a doomed task raised ValueError: R retried, the last one a failure.
    assert total(semconv.CONSUMED_MESSAGES, error__type="ValueError") == F * (R + 1)
    assert total(semconv.CELERY_TASK_RETRIES_METRIC) == F * R
    assert total(semconv.CELERY_TASK_FAILURES, celery__task__state="retry") == F * R
    assert total(semconv.CELERY_TASK_FAILURES, celery__task__state="failure") == F
    assert total(semconv.CELERY_TASK_FAILURES) == F * (R + 1)
    assert total(semconv.CELERY_TASK_QUEUE_WAIT) == S + F * (R + 1) + K
    assert total(semconv.CELERY_TASKS_IN_FLIGHT) == 0

    allowed = {
        semconv.MESSAGING_SYSTEM,
        semconv.MESSAGING_DESTINATION_NAME,
        semconv.MESSAGING_OPERATION_NAME,
        semconv.CELERY_TASK_NAME,
        semconv.ERROR_TYPE,
        semconv.CELERY_TASK_STATE,
    }
    for spec in semconv.METRICS[:4] + semconv.METRICS[-4:]:
        for point in telemetry.metric_points(spec.name):
            assert set(point.attributes) <= allowed, (spec.name, dict(point.attributes))
            assert point.attributes[semconv.MESSAGING_SYSTEM] == "celery"
