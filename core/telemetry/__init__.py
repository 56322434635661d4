"""Tracing (OpenTelemetry spans across processes) and the runner"s own metric
instruments (Prometheus counters and histograms).
"""

__all__ = ["metrics", "tracing"]
