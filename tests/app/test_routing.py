"""The Router on its own: registration, typed parameters, lookup order, 404/405."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from covetd import Covet, HTTPException, Router
from covetd.app.routing import RouteConflict


def endpoint(name: str) -> Callable[..., Any]:
    async def handler(request: Any) -> str:
        return name

    handler.__name__ = name
    return handler


def resolve(router: Router, method: str, path: str) -> tuple[str, dict[str, Any]]:
    route, params = router.resolve(method, path)
    return route.name, params


def status_of(router: Router, method: str, path: str) -> HTTPException:
    with pytest.raises(HTTPException) as caught:
        router.resolve(method, path)
    return caught.value


# -- decorators ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decorator", "method"),
    [
        ("get", "GET"),
        ("post", "POST"),
        ("put", "PUT"),
        ("patch", "PATCH"),
        ("delete", "DELETE"),
        ("head", "HEAD"),
        ("options", "OPTIONS"),
    ],
)
def test_method_decorators_register_their_method(decorator: str, method: str) -> None:
    router = Router()
    handler = endpoint("h")
    returned = getattr(router, decorator)("/thing")(handler)
    assert returned is handler
    route, params = router.resolve(method, "/thing")
    assert route.endpoint is handler
    assert params == {}
    assert route.methods == frozenset({method})


def test_route_decorator_takes_several_methods_case_insensitively() -> None:
    router = Router()
    router.route("/form", methods=["get", "Post"], name="form")(endpoint("form"))
    assert resolve(router, "GET", "/form") == ("form", {})
    assert resolve(router, "POST", "/form") == ("form", {})
    assert status_of(router, "PUT", "/form").status_code == 405


def test_route_name_defaults_to_the_function_name() -> None:
    router = Router()

    @router.get("/x")
    async def list_things() -> None: ...

    assert router.routes[0].name == "list_things"


def test_app_decorators_delegate_to_its_router() -> None:
    app = Covet()
    for decorator in ("get", "post", "put", "patch", "delete", "head", "options"):
        getattr(app, decorator)(f"/{decorator}")(endpoint(decorator))
    app.route("/multi", methods=("GET", "POST"))(endpoint("multi"))
    assert {r.path for r in app.routes} == {
        "/get",
        "/post",
        "/put",
        "/patch",
        "/delete",
        "/head",
        "/options",
        "/multi",
    }
    assert app.router.resolve("PATCH", "/patch")[0].name == "patch"


def test_route_path_must_start_with_a_slash() -> None:
    with pytest.raises(ValueError, match="must start with '/'"):
        Router().add_route("users", endpoint("users"))


# -- typed parameters -----------------------------------------------------------------


@pytest.fixture
def typed() -> Router:
    router = Router()
    router.add_route("/ints/{id:int}", endpoint("int"))
    router.add_route("/floats/{x:float}", endpoint("float"))
    router.add_route("/strs/{s:str}", endpoint("str"))
    router.add_route("/defaults/{s}", endpoint("default"))
    router.add_route("/uuids/{u:uuid}", endpoint("uuid"))
    router.add_route("/paths/{p:path}", endpoint("path"))
    router.add_route("/flags/{flag:bool}", endpoint("bool"))
    router.add_route("/static/*filepath", endpoint("wildcard"))
    return router


@pytest.mark.parametrize(
    ("path", "name", "value"),
    [
        ("/ints/42", "int", 42),
        ("/ints/007", "int", 7),
        ("/floats/1.5", "float", 1.5),
        ("/floats/2", "float", 2.0),
        ("/strs/hello", "str", "hello"),
        ("/defaults/hello world", "default", "hello world"),
        (
            "/uuids/9f1c2a64-7b7e-4a55-9a0b-2f0d7c1e3b11",
            "uuid",
            uuid.UUID("9f1c2a64-7b7e-4a55-9a0b-2f0d7c1e3b11"),
        ),
        ("/paths/a/b/c.txt", "path", "a/b/c.txt"),
        ("/paths/dir/", "path", "dir/"),
        ("/flags/true", "bool", True),
        ("/flags/YES", "bool", True),
        ("/flags/1", "bool", True),
        ("/flags/off", "bool", False),
        ("/flags/0", "bool", False),
        ("/static/css/site.css", "wildcard", "css/site.css"),
        ("/static/", "wildcard", ""),
    ],
)
def test_typed_parameters_are_converted(typed: Router, path: str, name: str, value: Any) -> None:
    found, params = resolve(typed, "GET", path)
    assert found == name
    (converted,) = params.values()
    assert converted == value
    assert type(converted) is type(value)


@pytest.mark.parametrize(
    "path",
    [
        "/ints/abc",
        "/ints/-1",
        "/ints/1.5",
        "/ints/٣",  # a non-ASCII digit is not an int segment
        "/floats/abc",
        "/floats/1e5",
        "/uuids/not-a-uuid",
        "/uuids/9f1c2a64-7b7e-4a55-9a0b-2f0d7c1e3b1",
        "/flags/maybe",
        "/strs/",
        "/defaults/",
        "/ints/1/extra",
    ],
)
def test_segments_that_do_not_convert_are_not_found(typed: Router, path: str) -> None:
    assert status_of(typed, "GET", path).status_code == 404


def test_parameter_names_are_the_keys(typed: Router) -> None:
    assert resolve(typed, "GET", "/flags/on") == ("bool", {"flag": True})
    assert resolve(typed, "GET", "/static/a/b") == ("wildcard", {"filepath": "a/b"})


def test_several_parameters_in_one_path() -> None:
    router = Router()
    router.add_route("/orgs/{org}/repos/{id:int}/files/{rest:path}", endpoint("file"))
    assert resolve(router, "GET", "/orgs/acme/repos/3/files/src/main.py") == (
        "file",
        {"org": "acme", "id": 3, "rest": "src/main.py"},
    )


# -- lookup order ----------------------------------------------------------------------


def test_static_segment_is_preferred_over_a_parameter() -> None:
    router = Router()
    router.add_route("/users/{id}", endpoint("user"))
    router.add_route("/users/me", endpoint("me"))
    assert resolve(router, "GET", "/users/me") == ("me", {})
    assert resolve(router, "GET", "/users/you") == ("user", {"id": "you"})


def test_static_route_and_param_route_with_different_tails() -> None:
    router = Router()
    router.add_route("/users/me/profile", endpoint("profile"))
    router.add_route("/users/{id}/settings", endpoint("settings"))
    assert resolve(router, "GET", "/users/me/profile") == ("profile", {})
    assert resolve(router, "GET", "/users/me/settings") == ("settings", {"id": "me"})
    assert resolve(router, "GET", "/users/7/settings") == ("settings", {"id": "7"})
    assert status_of(router, "GET", "/users/7/profile").status_code == 404


def test_lookup_backtracks_when_a_static_branch_dead_ends() -> None:
    router = Router()
    router.add_route("/users/me/{tab}/edit", endpoint("my_tab"))
    router.add_route("/users/{id}/settings", endpoint("settings"))
    assert resolve(router, "GET", "/users/me/settings") == ("settings", {"id": "me"})
    assert resolve(router, "GET", "/users/me/photos/edit") == ("my_tab", {"tab": "photos"})


def test_backtracking_does_not_leak_parameters_of_the_dead_branch() -> None:
    router = Router()
    router.add_route("/a/{x:int}/deep/end", endpoint("deep"))
    router.add_route("/a/{y}/deep", endpoint("shallow"))
    assert resolve(router, "GET", "/a/1/deep") == ("shallow", {"y": "1"})


def test_int_is_tried_before_str_at_the_same_position() -> None:
    router = Router()
    router.add_route("/items/{name}", endpoint("by_name"))  # registered first on purpose
    router.add_route("/items/{id:int}", endpoint("by_id"))
    assert resolve(router, "GET", "/items/12") == ("by_id", {"id": 12})
    assert resolve(router, "GET", "/items/twelve") == ("by_name", {"name": "twelve"})


def test_typed_candidates_order_int_float_uuid_bool_str() -> None:
    router = Router()
    router.add_route("/v/{s}", endpoint("str"))
    router.add_route("/v/{b:bool}", endpoint("bool"))
    router.add_route("/v/{u:uuid}", endpoint("uuid"))
    router.add_route("/v/{f:float}", endpoint("float"))
    router.add_route("/v/{i:int}", endpoint("int"))
    assert resolve(router, "GET", "/v/1")[0] == "int"
    assert resolve(router, "GET", "/v/1.5")[0] == "float"
    assert resolve(router, "GET", "/v/00000000-0000-0000-0000-000000000000")[0] == "uuid"
    assert resolve(router, "GET", "/v/true")[0] == "bool"
    assert resolve(router, "GET", "/v/zebra")[0] == "str"


def test_a_tail_is_the_last_resort() -> None:
    router = Router()
    router.add_route("/files/{p:path}", endpoint("any"))
    router.add_route("/files/{name}", endpoint("one"))
    router.add_route("/files/readme", endpoint("readme"))
    assert resolve(router, "GET", "/files/readme") == ("readme", {})
    assert resolve(router, "GET", "/files/notes") == ("one", {"name": "notes"})
    assert resolve(router, "GET", "/files/docs/notes") == ("any", {"p": "docs/notes"})


def test_fully_static_paths_match_exactly() -> None:
    router = Router()
    router.add_route("/about", endpoint("about"))
    assert resolve(router, "GET", "/about") == ("about", {})
    for path in ("/about/", "/About", "/about/x", "about", ""):
        assert status_of(router, "GET", path).status_code == 404


def test_root_route() -> None:
    router = Router()
    router.add_route("/", endpoint("root"))
    assert resolve(router, "GET", "/") == ("root", {})
    assert status_of(router, "GET", "/x").status_code == 404


# -- registration conflicts ------------------------------------------------------------


def test_same_method_and_path_twice_is_rejected() -> None:
    router = Router()
    router.add_route("/x", endpoint("first"))
    with pytest.raises(RouteConflict, match="GET /x"):
        router.add_route("/x", endpoint("second"))


def test_same_method_on_the_same_param_template_twice_is_rejected() -> None:
    router = Router()
    router.add_route("/x/{id:int}", endpoint("first"), ["POST"])
    with pytest.raises(RouteConflict):
        router.add_route("/x/{id:int}", endpoint("second"), ["POST", "PUT"])


def test_other_methods_on_the_same_path_are_fine() -> None:
    router = Router()
    router.add_route("/x/{id:int}", endpoint("read"), ["GET"])
    router.add_route("/x/{id:int}", endpoint("write"), ["PUT"])
    assert resolve(router, "PUT", "/x/1") == ("write", {"id": 1})
    assert resolve(router, "GET", "/x/1") == ("read", {"id": 1})


def test_same_type_parameters_with_different_names_at_one_position_conflict() -> None:
    router = Router()
    router.add_route("/users/{id:int}", endpoint("user"))
    with pytest.raises(RouteConflict, match="same position"):
        router.add_route("/users/{user_id:int}/posts", endpoint("posts"))


def test_default_str_and_explicit_str_are_the_same_type() -> None:
    router = Router()
    router.add_route("/tags/{tag}", endpoint("tag"))
    with pytest.raises(RouteConflict):
        router.add_route("/tags/{label:str}/items", endpoint("items"))


def test_different_types_at_one_position_are_fine() -> None:
    router = Router()
    router.add_route("/things/{id:int}", endpoint("by_id"))
    router.add_route("/things/{slug}", endpoint("by_slug"))
    assert len(router.routes) == 2


def test_two_tails_with_different_names_at_one_position_conflict() -> None:
    router = Router()
    router.add_route("/static/*filepath", endpoint("static"), ["GET"])
    with pytest.raises(RouteConflict):
        router.add_route("/static/{rest:path}", endpoint("upload"), ["POST"])


@pytest.mark.parametrize(
    "path",
    [
        "/files/{p:path}/raw",
        "/files/*rest/raw",
    ],
)
def test_a_tail_that_is_not_last_is_rejected(path: str) -> None:
    with pytest.raises(ValueError, match="must be last"):
        Router().add_route(path, endpoint("x"))


@pytest.mark.parametrize(
    "path",
    [
        "/f/{name}.txt",
        "/f/v{version:int}",
        "/f/{a}{b}",
        "/f/{name",
        "/f/name}",
        "/f/*",
        "/f/*bad-name",
    ],
)
def test_a_parameter_must_fill_a_whole_segment(path: str) -> None:
    with pytest.raises(ValueError):
        Router().add_route(path, endpoint("x"))


def test_unknown_parameter_type_is_rejected_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown parameter type 'date'") as caught:
        Router().add_route("/d/{day:date}", endpoint("x"))
    assert "int" in str(caught.value)


def test_duplicate_parameter_name_in_one_path_is_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate parameter"):
        Router().add_route("/a/{id}/b/{id:int}", endpoint("x"))


def test_a_rejected_route_is_not_half_registered() -> None:
    router = Router()
    router.add_route("/users/{id:int}", endpoint("user"))
    with pytest.raises(RouteConflict):
        router.add_route("/users/{uid:int}", endpoint("other"), ["POST"])
    assert [r.name for r in router.routes] == ["user"]
    assert status_of(router, "POST", "/users/1").status_code == 405


def test_a_route_conflicting_on_one_method_registers_none_of_its_methods() -> None:
    """All or nothing: a RouteConflict must not leave the route's other methods served.

    (Many extra methods, in sets of several sizes, so that the conflicting one is
    practically never the first the router looks at, whatever the sets' order.)
    """
    for size in (50, 100, 200, 400):
        router = Router()
        router.add_route("/x", endpoint("existing"), ["PUT"])
        extra = [f"EXT{size}_{i}" for i in range(size)]
        with pytest.raises(RouteConflict):
            router.add_route("/x", endpoint("rejected"), ["PUT", *extra])
        served = [m for m in extra if _served_by(router, m, "/x") == "rejected"]
        assert served == [], f"{len(served)} of {size} methods of a rejected route are served"
        assert [r.name for r in router.routes] == ["existing"]


def _served_by(router: Router, method: str, path: str) -> str | None:
    try:
        return router.resolve(method, path)[0].name
    except HTTPException:
        return None


# -- 404 and 405 -----------------------------------------------------------------------


def test_unknown_path_is_404_without_allow() -> None:
    router = Router()
    router.add_route("/x", endpoint("x"))
    error = status_of(router, "GET", "/y")
    assert error.status_code == 404
    assert error.headers is None


def test_known_path_without_the_method_is_405_with_allow_listing_every_method() -> None:
    router = Router()
    router.add_route("/items", endpoint("list"), ["GET"])
    router.add_route("/items", endpoint("create"), ["POST"])
    router.add_route("/items", endpoint("opts"), ["OPTIONS"])
    error = status_of(router, "DELETE", "/items")
    assert error.status_code == 405
    assert error.headers == {"Allow": "GET, HEAD, OPTIONS, POST"}


def test_405_on_a_parameterised_path_lists_its_methods() -> None:
    router = Router()
    router.add_route("/items/{id:int}", endpoint("get"), ["GET"])
    router.add_route("/items/{id:int}", endpoint("put"), ["PUT"])
    error = status_of(router, "PATCH", "/items/3")
    assert error.status_code == 405
    assert error.headers == {"Allow": "GET, HEAD, PUT"}


def test_405_without_get_does_not_advertise_head() -> None:
    router = Router()
    router.add_route("/submit", endpoint("submit"), ["POST"])
    error = status_of(router, "GET", "/submit")
    assert error.status_code == 405
    assert error.headers == {"Allow": "POST"}


def test_static_path_also_matched_by_a_template_merges_both_allow_lists() -> None:
    router = Router()
    router.add_route("/users/me", endpoint("me"), ["GET"])
    router.add_route("/users/{id}", endpoint("delete_user"), ["DELETE"])
    assert resolve(router, "DELETE", "/users/me") == ("delete_user", {"id": "me"})
    error = status_of(router, "PUT", "/users/me")
    assert error.headers == {"Allow": "DELETE, GET, HEAD"}


def test_method_served_by_a_less_specific_parameter_route_is_not_405() -> None:
    """``DELETE /items/5`` matches ``/items/{name}``: the int route lacking DELETE must
    not hide it (the same request with a non-numeric segment is served)."""
    router = Router()
    router.add_route("/items/{id:int}", endpoint("read"), ["GET"])
    router.add_route("/items/{name}", endpoint("remove"), ["DELETE"])
    assert resolve(router, "DELETE", "/items/abc") == ("remove", {"name": "abc"})
    assert resolve(router, "DELETE", "/items/5") == ("remove", {"name": "5"})


def test_method_served_by_a_parameter_route_behind_a_static_segment_is_not_405() -> None:
    router = Router()
    router.add_route("/users/me/{tab}", endpoint("my_tab"), ["GET"])
    router.add_route("/users/{id}/{tab}", endpoint("edit_tab"), ["PUT"])
    assert resolve(router, "PUT", "/users/me/photos") == (
        "edit_tab",
        {"id": "me", "tab": "photos"},
    )


# -- HEAD --------------------------------------------------------------------------------


def test_head_is_answered_by_the_get_route() -> None:
    router = Router()
    router.add_route("/page/{n:int}", endpoint("page"))
    assert resolve(router, "HEAD", "/page/2") == ("page", {"n": 2})
    router.add_route("/plain", endpoint("plain"))
    assert resolve(router, "HEAD", "/plain") == ("plain", {})


@pytest.mark.parametrize("head_first", [False, True])
def test_explicit_head_overrides_the_implicit_one(head_first: bool) -> None:
    router = Router()
    registrations = [
        ("/doc/{id:int}", endpoint("get_doc"), ["GET"]),
        ("/doc/{id:int}", endpoint("head_doc"), ["HEAD"]),
    ]
    for path, handler, methods in reversed(registrations) if head_first else registrations:
        router.add_route(path, handler, methods)
    assert resolve(router, "HEAD", "/doc/1") == ("head_doc", {"id": 1})
    assert resolve(router, "GET", "/doc/1") == ("get_doc", {"id": 1})


def test_explicit_head_twice_is_a_conflict() -> None:
    router = Router()
    router.add_route("/x", endpoint("get"), ["GET"])
    router.add_route("/x", endpoint("head1"), ["HEAD"])
    with pytest.raises(RouteConflict):
        router.add_route("/x", endpoint("head2"), ["HEAD"])


# -- groups ------------------------------------------------------------------------------


def test_router_prefix_applies_to_its_routes() -> None:
    api = Router(prefix="/api")
    api.add_route("/users", endpoint("users"))
    api.add_route("/", endpoint("api_root"))
    assert {r.path for r in api.routes} == {"/api/users", "/api"}
    assert resolve(api, "GET", "/api/users") == ("users", {})
    assert resolve(api, "GET", "/api") == ("api_root", {})


@pytest.mark.parametrize("prefix", ["api", "/api/", "/"])
def test_bad_router_prefixes_are_rejected(prefix: str) -> None:
    with pytest.raises(ValueError):
        Router(prefix=prefix)


def test_group_included_into_the_app() -> None:
    users = Router(prefix="/users")

    @users.get("/{id:int}")
    async def get_user(id: int) -> dict[str, int]:
        return {"id": id}

    @users.post("/")
    async def create_user() -> None: ...

    app = Covet()
    app.include_router(users)
    assert app.router.resolve("GET", "/users/5")[0].endpoint is get_user
    assert app.router.resolve("GET", "/users/5")[1] == {"id": 5}
    assert app.router.resolve("POST", "/users")[0].endpoint is create_user
    assert app.url_path_for("get_user", id=9) == "/users/9"


def test_group_included_with_an_extra_prefix() -> None:
    items = Router(prefix="/items")
    items.add_route("/{id:int}", endpoint("item"))
    items.add_route("/", endpoint("items"))
    app = Covet()
    app.include_router(items, prefix="/v2")
    assert resolve(app.router, "GET", "/v2/items/3") == ("item", {"id": 3})
    assert resolve(app.router, "GET", "/v2/items") == ("items", {})
    assert status_of(app.router, "GET", "/items/3").status_code == 404


def test_nested_groups() -> None:
    comments = Router(prefix="/comments")
    comments.add_route("/{cid:int}", endpoint("comment"))
    posts = Router(prefix="/posts")
    posts.add_route("/{pid:int}", endpoint("post"))
    posts.include_router(comments, prefix="/{pid:int}")
    api = Router(prefix="/api")
    api.include_router(posts)
    app = Covet()
    app.include_router(api, prefix="/v1")
    assert resolve(app.router, "GET", "/v1/api/posts/4") == ("post", {"pid": 4})
    assert resolve(app.router, "GET", "/v1/api/posts/4/comments/8") == (
        "comment",
        {"pid": 4, "cid": 8},
    )
    assert app.url_path_for("comment", pid=1, cid=2) == "/v1/api/posts/1/comments/2"


def test_included_group_keeps_methods_and_conflicts_with_existing_routes() -> None:
    group = Router(prefix="/g")
    group.add_route("/x", endpoint("gx"), ["GET", "POST"])
    app = Covet()
    app.add_route("/g/x", endpoint("existing"), ["POST"])
    with pytest.raises(RouteConflict):
        app.include_router(group)


@pytest.mark.parametrize("prefix", ["v1", "/v1/"])
def test_bad_include_prefixes_are_rejected(prefix: str) -> None:
    with pytest.raises(ValueError):
        Covet().include_router(Router(), prefix=prefix)


# -- url_path_for -------------------------------------------------------------------------


def test_url_path_for_fills_typed_parameters() -> None:
    router = Router()
    router.add_route("/users/{id:int}/posts/{slug}", endpoint("post"))
    router.add_route("/flags/{on:bool}", endpoint("flag"))
    router.add_route("/static/*filepath", endpoint("static"))
    router.add_route("/docs/{rest:path}", endpoint("docs"))
    router.add_route("/u/{u:uuid}", endpoint("by_uuid"))
    router.add_route("/about", endpoint("about"))
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert router.url_path_for("post", id=3, slug="hello") == "/users/3/posts/hello"
    assert router.url_path_for("flag", on=True) == "/flags/true"
    assert router.url_path_for("static", filepath="css/a.css") == "/static/css/a.css"
    assert router.url_path_for("docs", rest="a/b") == "/docs/a/b"
    assert router.url_path_for("by_uuid", u=ident) == f"/u/{ident}"
    assert router.url_path_for("about") == "/about"


def test_url_path_for_round_trips_through_resolve() -> None:
    router = Router()
    router.add_route("/a/{x:float}/{flag:bool}", endpoint("a"))
    path = router.url_path_for("a", x=2.5, flag=False)
    assert resolve(router, "GET", path) == ("a", {"x": 2.5, "flag": False})


def test_url_path_for_uses_explicit_names() -> None:
    router = Router()
    router.add_route("/x", endpoint("handler"), name="custom")
    assert router.url_path_for("custom") == "/x"
    with pytest.raises(LookupError):
        router.url_path_for("handler")


def test_url_path_for_unknown_name_or_wrong_params_raise() -> None:
    router = Router()
    router.add_route("/users/{id:int}", endpoint("user"))
    with pytest.raises(LookupError, match="no route named"):
        router.url_path_for("nope")
    with pytest.raises(LookupError):
        router.url_path_for("user")
    with pytest.raises(LookupError):
        router.url_path_for("user", id=1, extra=2)


def test_url_path_for_accepts_a_parameter_called_name() -> None:
    """``{name}`` is a common parameter (examples/hello.py has ``/hello/{name}``)."""
    router = Router()
    router.add_route("/hello/{name}", endpoint("hello"))
    assert router.url_path_for("hello", name="ada") == "/hello/ada"
    app = Covet()
    app.add_route("/hello/{name}", endpoint("hello"))
    assert app.url_path_for("hello", name="ada") == "/hello/ada"


@pytest.mark.parametrize(
    ("template", "params"),
    [
        ("/users/{slug}", {"slug": "a/b"}),
        ("/users/{slug}", {"slug": ""}),
        ("/items/{id:int}", {"id": -3}),
        ("/items/{id:int}", {"id": "abc"}),
        ("/flags/{on:bool}", {"on": "maybe"}),
    ],
)
def test_url_path_for_refuses_values_its_route_would_not_match(
    template: str, params: dict[str, Any]
) -> None:
    """A built path must lead back to its route; one that cannot is an error, not a
    silently wrong link."""
    router = Router()
    router.add_route(template, endpoint("target"))
    try:
        path = router.url_path_for("target", **params)
    except (ValueError, LookupError):
        return
    assert _served_by(router, "GET", path) == "target", f"{path!r} does not lead back"
