"""Helpers the test modules share (import them; test modules never import each other).
Fixtures built on them live in tests/conftest.py."""
