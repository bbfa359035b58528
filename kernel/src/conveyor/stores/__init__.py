"""Stores the kernel keeps state in: dead letters and deduplication keys, with in-memory ones."""
