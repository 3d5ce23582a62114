"""Routing: a segment radix tree with typed parameters, and route groups.

Lookup order for a path (the hot path):

1. fully static paths: one dict lookup;
2. otherwise the tree, segment by segment, trying at each position the static child
   first, then typed parameters by convertor priority (int, float, uuid, bool, str),
   then a tail (``{p:path}`` or ``*name``), backtracking when a branch dead-ends.

Registration rejects what would make a lookup ambiguous: the same method twice on a
path, two parameters of the same type but different names at one position, a tail
that is not last. A path that matches but lacks the method is a 405 whose ``Allow``
lists every method of that path (HEAD included wherever GET is).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .convertors import CONVERTORS, Convertor
from .exceptions import HTTPException

__all__ = ["Route", "RouteConflict", "Router"]

Handler = Callable[..., Any]

_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z_]+))?\}$")
_WILDCARD = re.compile(r"^\*([A-Za-z_][A-Za-z0-9_]*)$")

# The pseudo-method WebSocket routes are registered under (never in an Allow header).
WEBSOCKET = "WEBSOCKET"

# How a handler is called, decided once at registration.
CALL_NOTHING, CALL_REQUEST, CALL_REQUEST_PARAMS, CALL_PARAMS = range(4)


class RouteConflict(ValueError):
    """Two routes that a lookup could not tell apart."""


@dataclass(slots=True)
class Route:
    """One handler for some methods of one path template."""

    path: str
    endpoint: Handler
    methods: frozenset[str]
    name: str
    call_style: int = CALL_REQUEST
    passed_params: tuple[str, ...] | None = None  # None: every path parameter
    is_async: bool = True
    param_names: tuple[str, ...] = ()
    include_in_schema: bool = True


@dataclass(slots=True)
class _Segment:
    text: str
    name: str = ""
    convertor: Convertor | None = None

    @property
    def is_static(self) -> bool:
        return self.convertor is None


@dataclass(slots=True)
class _PathEndpoint:
    """All routes of one path template, by method."""

    template: str
    methods: dict[str, Route] = field(default_factory=dict)
    implicit_head: bool = False
    allow: str = ""

    def add(self, route: Route) -> None:
        for method in sorted(route.methods):  # check all first: a conflict adds nothing
            existing = self.methods.get(method)
            if existing is not None and not (method == "HEAD" and self.implicit_head):
                raise RouteConflict(
                    f"{method} {route.path} is already handled by {existing.name!r}"
                )
        for method in route.methods:
            self.methods[method] = route
            if method == "HEAD":
                self.implicit_head = False
        if "GET" in route.methods and "HEAD" not in self.methods:
            self.methods["HEAD"] = route
            self.implicit_head = True
        self.allow = ", ".join(sorted(m for m in self.methods if m != WEBSOCKET))


class _Node:
    __slots__ = ("endpoint", "params", "static", "tail", "tail_name")

    def __init__(self) -> None:
        self.static: dict[str, _Node] = {}
        self.params: list[tuple[Convertor, str, _Node]] = []
        self.endpoint: _PathEndpoint | None = None
        self.tail: _PathEndpoint | None = None
        self.tail_name = ""


def parse_template(path: str) -> list[_Segment]:
    if not path.startswith("/"):
        raise ValueError(f"route path must start with '/': {path!r}")
    segments = [_parse_segment(text, path) for text in path[1:].split("/")]
    for segment in segments[:-1]:
        if segment.convertor is not None and segment.convertor.matches_rest:
            raise ValueError(f"a path/wildcard parameter must be last in {path!r}")
    names = [s.name for s in segments if s.name]
    if len(names) != len(set(names)):
        raise ValueError(f"duplicate parameter name in {path!r}")
    return segments


def _parse_segment(text: str, path: str) -> _Segment:
    if match := _PARAM.match(text):
        kind = match.group(2) or "str"
        if kind not in CONVERTORS:
            raise ValueError(
                f"unknown parameter type {kind!r} in {path!r} (known: {', '.join(CONVERTORS)})"
            )
        return _Segment(text, match.group(1), CONVERTORS[kind])
    if match := _WILDCARD.match(text):
        return _Segment(text, match.group(1), CONVERTORS["path"])
    if "{" in text or "}" in text or text.startswith("*"):
        raise ValueError(f"a parameter must fill a whole path segment: {text!r} in {path!r}")
    return _Segment(text)


def _call_style(
    endpoint: Handler, param_names: tuple[str, ...]
) -> tuple[int, tuple[str, ...] | None]:
    """How to call ``endpoint``, and which path parameters to pass (None: all of them).

    Parameters named like path parameters receive them as keywords; any other
    parameter receives the request (positionally, first).
    """
    try:
        parameters = inspect.signature(endpoint).parameters.values()
    except (TypeError, ValueError):
        return CALL_REQUEST, None
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in parameters)
    named = [
        p for p in parameters if p.kind is not p.VAR_KEYWORD and p.kind is not p.VAR_POSITIONAL
    ]
    declared = tuple(p.name for p in named if p.name in param_names)
    wants_params = bool(param_names) and (takes_kwargs or bool(declared))
    passed = None if takes_kwargs or len(declared) == len(param_names) else declared
    if any(p.name not in param_names for p in named):
        return (CALL_REQUEST_PARAMS if wants_params else CALL_REQUEST), passed
    return (CALL_PARAMS if wants_params else CALL_NOTHING), passed


def _is_async(endpoint: Handler) -> bool:
    """True for ``async def`` functions and for objects whose ``__call__`` is one."""
    if inspect.iscoroutinefunction(endpoint):
        return True
    call = None if inspect.isfunction(endpoint) else type(endpoint).__dict__.get("__call__")
    return call is not None and inspect.iscoroutinefunction(call)


class Router:
    """A group of routes; include it in an app (or another router) under a prefix."""

    def __init__(self, prefix: str = "") -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(f"router prefix must start with '/' and not end with '/': {prefix!r}")
        self.prefix = prefix
        self.routes: list[Route] = []
        self._static: dict[str, _PathEndpoint] = {}
        self._root = _Node()
        self._by_name: dict[str, tuple[Route, list[_Segment]]] = {}

    # -- registration ----------------------------------------------------------------

    def add_route(
        self,
        path: str,
        endpoint: Handler,
        methods: Iterable[str] = ("GET",),
        name: str | None = None,
        include_in_schema: bool = True,
    ) -> Route:
        full_path = self.prefix + path if path != "/" or not self.prefix else self.prefix
        segments = parse_template(full_path)
        param_names = tuple(s.name for s in segments if s.name)
        call_style, passed_params = _call_style(endpoint, param_names)
        route = Route(
            path=full_path,
            endpoint=endpoint,
            methods=frozenset(m.upper() for m in methods),
            name=name or str(getattr(endpoint, "__name__", full_path)),
            call_style=call_style,
            passed_params=passed_params,
            is_async=_is_async(endpoint),
            param_names=param_names,
            include_in_schema=include_in_schema,
        )
        self._insert(route, segments)
        self.routes.append(route)
        self._by_name.setdefault(route.name, (route, segments))
        return route

    def route(
        self, path: str, methods: Iterable[str] = ("GET",), name: str | None = None
    ) -> Callable[[Handler], Handler]:
        def decorator(endpoint: Handler) -> Handler:
            self.add_route(path, endpoint, methods, name)
            return endpoint

        return decorator

    def get(self, path: str, name: str | None = None) -> Callable[[Handler], Handler]:
        return self.route(path, ("GET",), name)

    def post(self, path: str, name: str | None = None) -> Callable[[Handler], Handler]:
        return self.route(path, ("POST",), name)

    def put(self, path: str, name: str | None = None) -> Callable[[Handler], Handler]:
        return self.route(path, ("PUT",), name)

    def patch(self, path: str, name: str | None = None) -> Callable[[Handler], Handler]:
        return self.route(path, ("PATCH",), name)

    def delete(self, path: str, name: str | None = None) -> Callable[[Handler], Handler]:
        return self.route(path, ("DELETE",), name)

    def head(self, path: str, name: str | None = None) -> Callable[[Handler], Handler]:
        return self.route(path, ("HEAD",), name)

    def options(self, path: str, name: str | None = None) -> Callable[[Handler], Handler]:
        return self.route(path, ("OPTIONS",), name)

    def include_router(self, router: Router, prefix: str = "") -> None:
        """Copy ``router``'s routes here under ``prefix`` (routes added later are not seen)."""
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(f"prefix must start with '/' and not end with '/': {prefix!r}")
        for route in router.routes:
            path = prefix + route.path if route.path != "/" or not prefix else prefix
            self.add_route(path, route.endpoint, route.methods, route.name, route.include_in_schema)

    def _insert(self, route: Route, segments: list[_Segment]) -> None:
        if all(s.is_static for s in segments):
            endpoint = self._static.setdefault(route.path, _PathEndpoint(route.path))
        else:
            endpoint = self._insert_dynamic(route.path, segments)
        endpoint.add(route)

    def _insert_dynamic(self, path: str, segments: list[_Segment]) -> _PathEndpoint:
        node = self._root
        for segment in segments:
            convertor = segment.convertor
            if convertor is None:
                node = node.static.setdefault(segment.text, _Node())
            elif convertor.matches_rest:
                return self._insert_tail(node, segment, path)
            else:
                node = self._param_child(node, segment, convertor, path)
        # Parameter names were checked at every position: same node, same pattern.
        if node.endpoint is None:
            node.endpoint = _PathEndpoint(path)
        return node.endpoint

    @staticmethod
    def _param_child(node: _Node, segment: _Segment, convertor: Convertor, path: str) -> _Node:
        for existing, name, child in node.params:
            if existing is convertor:
                if name != segment.name:
                    raise RouteConflict(
                        f"{path}: parameter {{{segment.name}:{convertor.name}}} conflicts with "
                        f"{{{name}:{convertor.name}}} at the same position"
                    )
                return child
        child = _Node()
        node.params.append((convertor, segment.name, child))
        node.params.sort(key=lambda entry: entry[0].priority)
        return child

    @staticmethod
    def _insert_tail(node: _Node, segment: _Segment, path: str) -> _PathEndpoint:
        if node.tail is None:
            node.tail = _PathEndpoint(path)
            node.tail_name = segment.name
        elif node.tail_name != segment.name:
            raise RouteConflict(f"{path} conflicts with {node.tail.template}")
        return node.tail

    # -- lookup (hot path) -----------------------------------------------------------

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, Any]]:
        """The route for ``method path`` and its converted parameters.

        Raises ``HTTPException`` 404 (no such path) or 405 (the path exists, but no
        route of it takes the method; ``Allow`` lists every method any route of the
        path takes).
        """
        endpoint = self._static.get(path)
        if endpoint is not None:
            route = endpoint.methods.get(method)
            if route is not None:
                return route, {}
        allowed: set[str] = set(endpoint.methods) if endpoint is not None else set()
        if path[:1] == "/":
            params: dict[str, Any] = {}
            found = _match(self._root, path[1:].split("/"), 0, params, method, allowed)
            if found is not None:
                return found.methods[method], params
        allowed.discard(WEBSOCKET)
        if not allowed:
            raise HTTPException(404)
        raise HTTPException(405, headers={"Allow": ", ".join(sorted(allowed))})

    def url_path_for(self, name: str, /, **params: Any) -> str:
        """The path of the route called ``name`` with ``params`` filled in.

        Raises ``LookupError`` for an unknown name or wrong parameter names, and
        ``ValueError`` for a value the route would not match back (an empty string,
        a slash outside a path parameter, "abc" for an int...).
        """
        try:
            route, segments = self._by_name[name]
        except KeyError:
            raise LookupError(f"no route named {name!r}") from None
        if set(params) != set(route.param_names):
            raise LookupError(f"route {name!r} takes parameters {sorted(route.param_names)}")
        return "/" + "/".join(_fill(segment, params) for segment in segments)


def _fill(segment: _Segment, params: dict[str, Any]) -> str:
    convertor = segment.convertor
    if convertor is None:
        return segment.text
    text = convertor.to_string(params[segment.name])
    if not convertor.matches_rest:
        try:
            matches = "/" not in text and bool(text) and convertor.convert(text) is not None
        except ValueError:
            matches = False
        if not matches:
            raise ValueError(f"{text!r} is not a valid {{{segment.name}:{convertor.name}}}")
    return text


def _match(
    node: _Node,
    segments: list[str],
    index: int,
    params: dict[str, Any],
    method: str,
    allowed: set[str],
) -> _PathEndpoint | None:
    """Depth-first search for an endpoint of the path that takes ``method``.

    Endpoints that match the path but not the method add their methods to ``allowed``
    (for the 405) and the search goes on: a less specific route may take the method.
    """
    if index == len(segments):
        if node.endpoint is not None:
            if method in node.endpoint.methods:
                return node.endpoint
            allowed.update(node.endpoint.methods)
        return _match_tail(node, "", params, method, allowed)
    segment = segments[index]
    child = node.static.get(segment)
    if child is not None:
        found = _match(child, segments, index + 1, params, method, allowed)
        if found is not None:
            return found
    for convertor, name, child in node.params:
        try:
            value = convertor.convert(segment)
        except ValueError:
            continue
        found = _match(child, segments, index + 1, params, method, allowed)
        if found is not None:
            params[name] = value
            return found
    return _match_tail(node, "/".join(segments[index:]), params, method, allowed)


def _match_tail(
    node: _Node, rest: str, params: dict[str, Any], method: str, allowed: set[str]
) -> _PathEndpoint | None:
    tail = node.tail
    if tail is None:
        return None
    if method not in tail.methods:
        allowed.update(tail.methods)
        return None
    params[node.tail_name] = rest
    return tail
