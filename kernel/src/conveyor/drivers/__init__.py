"""Drivers execute what the core decides: the sync ``Messaging`` and its consumers."""
