"""The package version, kept in one place (read by setup.py)."""

__version__ = "0.1.0"
