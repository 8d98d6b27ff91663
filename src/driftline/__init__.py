"""Driftline: event-driven drift prediction for maritime search and rescue."""

__version__ = "0.1.0"
