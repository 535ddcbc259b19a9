"""Soak tests: a multi-worker server under a long mixed load, its memory and its
database connections watched throughout."""
