"""A FastAPI app whose endpoint sends a command handled asynchronously (see ``app.py``)."""
