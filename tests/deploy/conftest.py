"""Paths of the deployment examples the tests check."""

from __future__ import annotations

from pathlib import Path

#: The repository's deploy/ folder.
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
