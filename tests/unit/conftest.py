"""Fixtures the unit tests share: the dashboard app over fakes (``dash``)."""

from tests.unit.dashboard_app import dash

__all__ = ["dash"]
