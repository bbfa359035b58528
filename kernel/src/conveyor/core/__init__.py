"""The pure core: values, routing, policies, the codec, the journal and the lifecycle.

Nothing here does IO, starts a thread or touches an event loop (``tests/test_architecture.py``
keeps it so): drivers execute what the core decides.
"""
