"""The demo shop: orders, e-mails, a warehouse that is down, and a nightly report, on SQLite."""
