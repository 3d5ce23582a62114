"""Helpers shared by the test suite: real covetd processes and raw HTTP clients."""
