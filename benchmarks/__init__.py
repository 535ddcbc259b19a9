"""Benchmarks of the server and the store; never part of the test run (``nox -s bench``).

``python -m benchmarks.http`` loads our server and the shared limit server side by side;
``python -m benchmarks.scale`` loads our server on a 10,000-task and a 1,000,000-task
table side by side; ``python -m benchmarks.streams`` measures live event streams (idle
memory and keepalives, delivery latency and losses); ``pytest
benchmarks/test_store_speed.py`` times store operations against raw asyncpg.
docs/performance.md explains the numbers.
"""
