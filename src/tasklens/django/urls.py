"""``path("tasklens/", include("tasklens.django.urls"))``: ``health/`` (named ``tasklens-health``)."""

from __future__ import annotations

from django.urls import path

from tasklens.django import views

app_name = "tasklens"
urlpatterns = [path("health/", views.health, name="tasklens-health")]
