"""Request counts over two workers are exact, labelled by route template (issue 7).

``covetd_http_requests_total`` (and the app's own counters) sum to exactly the
requests sent, whichever worker served them; its ``route`` label is the route
template or ``<unmatched>``, never the raw path, so a scan of random paths adds no
series; the duration histogram's ``_count`` is the request count of its series and
its buckets are cumulative, in the configured bounds, ending at ``+Inf``.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable

from support.metrics_server import (
    DEFAULT_BOUNDS,
    DURATION,
    ITEM_ROUTE,
    REQUESTS,
    UNMATCHED,
    MetricsServer,
    Scrape,
    check_histograms,
    fetch_all,
    fetch_statuses,
)

ITEMS, HELLOS = 150, 50
BUCKETS = [0.005, 0.05, 0.5, 5]
SCAN = 200

Start = Callable[..., MetricsServer]


def served_total(scrape: Scrape) -> float:
    return scrape.total(REQUESTS, route=ITEM_ROUTE) + scrape.total(REQUESTS, route="/hello")


def test_requests_total_is_exact_over_two_workers(metrics_server: Start) -> None:
    server = metrics_server({"metrics": {"buckets": BUCKETS}})
    assert served_total(server.scrape()) == 0
    paths = [f"/items/{i}" for i in range(ITEMS)] + ["/hello"] * HELLOS
    served = fetch_all(server.port, paths)
    assert set(map(int, served)) == server.workers(), f"both workers must serve: {served}"
    scrape = server.wait_value(served_total, ITEMS + HELLOS, "requests counted")
    assert {s.labels for s in scrape.select(REQUESTS)} == {
        frozenset({("method", "GET"), ("route", ITEM_ROUTE), ("status", "200")}),
        frozenset({("method", "GET"), ("route", "/hello"), ("status", "200")}),
    }
    assert scrape.total(REQUESTS, route=ITEM_ROUTE) == ITEMS
    assert scrape.total(REQUESTS, route="/hello") == HELLOS
    assert scrape.types["covetd_http_requests"] == "counter"
    assert scrape.types[DURATION] == "histogram"
    check_histograms(scrape, [str(float(bound)) for bound in BUCKETS])
    for route, count in ((ITEM_ROUTE, ITEMS), ("/hello", HELLOS)):
        assert scrape.total(f"{DURATION}_count", route=route) == count, route
    # The app's own counters (prometheus-client's multiprocess mode) add up the same.
    assert scrape.total("metricsapp_items_direct_total", kind="even") == ITEMS // 2
    assert scrape.total("metricsapp_items_direct_total", kind="odd") == ITEMS // 2
    assert scrape.total("metricsapp_items_covetd_total") == ITEMS


def random_paths(rng: random.Random, count: int) -> list[str]:
    """Paths a scanner tries: random words, under and beside the app's routes."""

    def word() -> str:
        return "".join(rng.choices(string.ascii_lowercase + string.digits, k=12)) + "z"

    shapes = [
        lambda: f"/{word()}",
        lambda: f"/{word()}/{word()}.php?{word()}=1",
        lambda: f"/items/{word()}",  # not an int: no route matches
        lambda: f"/items/{rng.randrange(10**9)}",  # the template: its one series
        lambda: f"/hello/{word()}",
        lambda: f"/.{word()}/../{word()}",
    ]
    return [rng.choice(shapes)() for _ in range(count)]


def test_a_scan_of_random_paths_creates_no_new_series(metrics_server: Start) -> None:
    server = metrics_server()
    fetch_all(server.port, ["/items/1", "/items/2", "/hello"])  # every app series too
    before = server.wait_value(served_total, 3, "warm-up requests counted")
    paths = random_paths(random.Random(7), SCAN)
    matching = sum(1 for path in paths if path.removeprefix("/items/").isdigit())
    assert 0 < matching < SCAN
    statuses = fetch_statuses(server.port, paths)
    assert statuses == {200: matching, 404: SCAN - matching}, statuses

    def scanned(scrape: Scrape) -> float:
        return scrape.total(REQUESTS, route=ITEM_ROUTE) + scrape.total(REQUESTS, route=UNMATCHED)

    after = server.wait_value(scanned, 2 + SCAN, "scan requests counted")
    assert after.total(REQUESTS, route=ITEM_ROUTE, status="200") == 2 + matching
    assert after.total(REQUESTS, route=UNMATCHED, status="404") == SCAN - matching
    new_requests = after.series(REQUESTS) - before.series(REQUESTS)
    assert new_requests == {
        (REQUESTS, frozenset({("method", "GET"), ("route", UNMATCHED), ("status", "404")}))
    }
    assert len(after.series(REQUESTS)) - len(before.series(REQUESTS)) == 1
    # Across every metric: what is new is the <unmatched> series, nothing else.
    for name, labels in after.series() - before.series():
        assert dict(labels).get("route") == UNMATCHED, (name, labels)
    values = {value for sample in after.samples for _, value in sample.labels}
    for path in paths:
        leaked = [value for value in values if path.split("?")[0].strip("/") in value]
        assert not leaked, f"a raw path in a label value: {leaked}"
    check_histograms(after, DEFAULT_BOUNDS)
