"""OpenTelemetry and logging set-up shared by every service, and trace context carriers."""

from webhooks_telemetry.logs import setup_logging
from webhooks_telemetry.propagation import extract_context, inject_headers, metadata_with_context
from webhooks_telemetry.tracing import (
    flush_tracing,
    service_resource_name,
    setup_tracing,
    shutdown_tracing,
)

__all__ = [
    "extract_context",
    "flush_tracing",
    "inject_headers",
    "metadata_with_context",
    "service_resource_name",
    "setup_logging",
    "setup_tracing",
    "shutdown_tracing",
]
