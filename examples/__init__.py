"""Runnable example programs; each is also run by the test suite."""
