"""Liaison: the shared service behind school early-help casework."""

__version__ = "0.1.0"
