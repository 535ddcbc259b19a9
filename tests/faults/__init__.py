"""Fault tests: a private PostgreSQL stopped and restarted under load, servers killed,
pools exhausted, statements timed out and clients gone mid-request."""
