"""Tests of todo_http: the REST contract over aiohttp's test client."""
