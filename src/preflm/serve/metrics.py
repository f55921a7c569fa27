"""Prometheus metrics: requests, latency, answers stored, featurizer time and texts.

With several worker processes ``PROMETHEUS_MULTIPROC_DIR`` is set before this module is imported
(``preflm serve --workers N`` does it) and ``/metrics`` sums every worker's values.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("preflm_requests", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram("preflm_request_seconds", "Time to answer an HTTP request", ["route"], buckets=LATENCY_BUCKETS)
ANSWERS = Counter("preflm_answers", "Answers stored (replays of an idempotency key not counted)")
FEATURIZER_SECONDS = Histogram("preflm_featurizer_seconds", "Time of one featurizer call", buckets=LATENCY_BUCKETS)
FEATURIZER_TEXTS = Counter("preflm_featurizer_texts", "Texts embedded by the featurizer")


def record_batch(n_texts: int, seconds: float) -> None:
    FEATURIZER_SECONDS.observe(seconds)
    FEATURIZER_TEXTS.inc(n_texts)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(DEFAULT_REGISTRY), CONTENT_TYPE_LATEST
