"""Runnable studies and the ``strategic-env`` command line."""
