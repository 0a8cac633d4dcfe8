from __future__ import annotations

from django.urls import include, path

import tests.django.project.shop.tasks  # noqa: F401  - declares the shop's queues

urlpatterns = [path("tasklens/", include("tasklens.django.urls"))]
