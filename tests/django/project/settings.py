"""A minimal Django project using django_dramatiq on the real Redis, and tasklens.django.

The Redis URL and the Dramatiq namespace come from the environment the tests set.
"""

from __future__ import annotations

import os

SECRET_KEY = "tasklens-test-project"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
ROOT_URLCONF = "tests.django.project.urls"
USE_TZ = True
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django_dramatiq",
    "tasklens.django",
    "tests.django.project.shop",
]
DRAMATIQ_BROKER = {
    "BROKER": "dramatiq.brokers.redis.RedisBroker",
    "OPTIONS": {
        "url": os.environ.get("SHOP_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "namespace": os.environ.get("SHOP_NAMESPACE", "shop"),
    },
    "MIDDLEWARE": [
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.Retries",
    ],
}
TASKLENS = {
    "SERVICE_NAME": "shop-web",
    "HEALTH": {"MAX_BACKLOG": 2, "TIMEOUT": 2, "CACHE_TTL": 0},
}
