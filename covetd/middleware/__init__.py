"""Middleware: the YAML-configured pipeline and the built-in middleware."""

from .base import Handler, Middleware, NoOptions
from .pipeline import BUILTINS, build_chain

__all__ = ["BUILTINS", "Handler", "Middleware", "NoOptions", "build_chain"]
