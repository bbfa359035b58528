"""Transports: the seam adapters implement, the in-memory transport, and channel definitions.

Adapter authors import the seam from ``conveyor.transports.seam``.
"""
