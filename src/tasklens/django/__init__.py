"""tasklens for Django: ``setup()`` from settings, and queue health views for ``urls.py``.

Add the app after ``django_dramatiq`` (whose broker it reads)::

    INSTALLED_APPS = [..., "django_dramatiq", "tasklens.django"]

    TASKLENS = {
        "SERVICE_NAME": "shop-web",          # when OTEL_SERVICE_NAME does not say
        "CAPTURE_ARGS": False,               # any option of tasklens.setup(), upper case
        "HEALTH": {"MAX_BACKLOG": 1000, "MAX_AGE": 300, "MIN_WORKERS": 1},
    }

``AppConfig.ready()`` calls ``tasklens.setup()`` once per process with those options (the
``OTEL_*`` environment configures the rest, as everywhere; ``"SETUP": False`` skips it). Then::

    urlpatterns = [..., path("tasklens/", include("tasklens.django.urls"))]

serves ``GET /tasklens/health/``: the verdict of ``tasklens health`` (and the monitor's
``/api/health``) for the queues of the project's Dramatiq broker, as JSON; 200 when healthy or
degraded, 503 when the broker does not answer (``?strict=1``: degraded is 503 too).
"""

from __future__ import annotations

__all__: list[str] = []
