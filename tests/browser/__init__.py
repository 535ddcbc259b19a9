"""Tests of the web app in a real browser: chromium driven by Playwright against a
``todo-http serve`` process on SQLite and on PostgreSQL."""
