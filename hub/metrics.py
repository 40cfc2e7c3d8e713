"""Prometheus metrics, on a registry per app so several apps (tests) never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "contacthub_http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "contacthub_http_request_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=self.registry,
        )
        self.ingested = Counter(
            "contacthub_ingested_total",
            "Inbound items by channel and whether they were new",
            ["channel", "created"],
            registry=self.registry,
        )
        self.deliveries = Counter(
            "contacthub_deliveries_total",
            "Outbound delivery attempts by channel and outcome",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.socket_connections = Counter(
            "contacthub_socket_connections_total",
            "socket.io connections by namespace and outcome",
            ["namespace", "outcome"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
