"""One delivery attempt: the request a subscription asks for, sent once, its outcome classified.

The body is the job's shaped payload (REST) or that envelope as XML in a SOAP body; the
headers are the content type, the Standard Webhooks signature (``webhook-id`` is the
delivery id, the same on every attempt, so receivers can deduplicate), ``webhook-attempt``,
the W3C trace context and the subscription's authentication. A 401 from an endpoint that
uses an OAuth grant invalidates the token and the attempt is sent once more with a fresh
one. Nothing is sent without the configured credentials: a token that cannot be had is a
failed attempt of class ``oauth_token``.

Every attempt is a CLIENT span (HTTP semantic conventions) under the job's trace; a retry's
span links to the span of the attempt before it. When the sampler would not record it (the
job's trace is not sampled and the sampler follows its parent, as every ``parentbased_*``
one does), no span is made at all: the job's trace context is what the request and the
attempt record carry.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from opentelemetry import baggage, propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode

from webhooks.v1 import common_pb2, messages_pb2
from webhooks_catalogue.failure_classes import failure_name
from webhooks_sender.credentials import (
    Credentials,
    CredentialsUnusable,
    TokenFailure,
    refreshable,
)
from webhooks_sender.directory import Endpoint
from webhooks_sender.guard import BlockedDestination
from webhooks_sender.outcomes import NO_FAILURE, response_outcome, shown_url
from webhooks_sender.signing import signature_headers
from webhooks_sender.soap import SoapEnvelopes
from webhooks_sender.soap_envelope import SoapSettingsError
from webhooks_sender.soap_faults import parse_fault
from webhooks_sender.transport import HttpResponse, Outbound, OutboundError
from webhooks_telemetry import inject_headers
from webhooks_telemetry.tracing import drops_unsampled_spans

tracer = trace.get_tracer("webhooks.sender")
FC = messages_pb2.FailureClass

USER_AGENT = "webhooks-platform/0.1 (+https://github.com/webhooks-platform)"
JSON = "application/json"


@dataclass(frozen=True)
class AttemptResult:
    started_at: datetime
    duration_ms: int
    url: str  # as shown: without user info or query string
    failure_class: int  # FAILURE_CLASS_UNSPECIFIED when it succeeded
    status_code: int = 0
    message: str = ""
    response_snippet: bytes = b""
    request_body: bytes = b""
    request_content_type: str = ""
    retry_after: float | None = None  # seconds a 429 / 503 asked to wait
    # Whether a retry is pointless: 410 Gone, or the subscription is gone.
    final: bool = False
    span_context: Mapping[str, str] = field(default_factory=dict)  # traceparent of the span

    @property
    def succeeded(self) -> bool:
        return self.failure_class == NO_FAILURE


class Deliverer:
    def __init__(
        self, outbound: Outbound, soap: SoapEnvelopes, credentials: Credentials, timeout: float
    ) -> None:
        self._outbound = outbound
        self._soap = soap
        self._credentials = credentials
        self._timeout = timeout

    async def attempt(
        self,
        endpoint: Endpoint,
        job: messages_pb2.DeliveryJob,
        *,
        parent: Context | None = None,
        links: Sequence[Link] = (),
        untraced: Mapping[str, str] | None = None,
    ) -> AttemptResult:
        """One attempt under ``parent`` (the job's trace context), its span linked to
        ``links``. ``untraced``: the caller has found that no span is to be made (see
        ``drops_unsampled``) and these are the trace headers to send and record."""
        target = _target(endpoint.subscription.webhook.url)
        if untraced is not None:
            return await self._attempt(endpoint, job, target.shown, untraced)
        if parent is not None:
            parent_span = trace.get_current_span(parent).get_span_context()
            if (
                parent_span.is_valid
                and not parent_span.trace_flags.sampled
                and drops_unsampled_spans(tracer, remote=parent_span.is_remote)
            ):
                # The sampler would drop this span (its parent is not sampled): none is
                # made, no attributes gathered. The job's own trace context travels on, in
                # the request and the record: what a non-recording span's would be, bar a
                # span id nobody will ever see.
                return await self._attempt(
                    endpoint, job, target.shown, propagated(parent, parent_span)
                )
        # The span is not made the current one: attaching and detaching the context costs
        # much of the span's own cost on the hot path, and nothing under the attempt reads
        # the current span. What needs it gets it explicitly: the traceparent sent to the
        # endpoint and recorded with the attempt, injected once.
        span = tracer.start_span(
            "POST",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes=_span_attributes(target, job),
            links=links,
        )
        try:
            trace_headers = propagated(
                trace.set_span_in_context(span, parent), span.get_span_context()
            )
            result = await self._attempt(endpoint, job, target.shown, trace_headers)
            if span.is_recording():
                _record_on_span(span, result)
            return result
        except BaseException as error:  # as start_as_current_span would record it
            if span.is_recording():
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            raise
        finally:
            span.end()

    async def _attempt(
        self,
        endpoint: Endpoint,
        job: messages_pb2.DeliveryJob,
        url: str,
        trace_headers: Mapping[str, str],
    ) -> AttemptResult:
        """``url`` is the webhook URL as shown, ``trace_headers`` the attempt's span context.

        Prepare (body, headers, signature), call (credentials, the POST, once more with a
        fresh token after a 401), outcome (``_outcome``)."""
        started_at = datetime.now(UTC)
        started = time.monotonic()
        subscription = endpoint.subscription
        at = (started_at, started, url, trace_headers)  # what a failed attempt's result says
        try:
            body, content_type, soap_headers = await self._body(endpoint, job)
        except SoapSettingsError as error:
            return _failed(at, _refused_or(error, FC.FAILURE_CLASS_CONFIGURATION), str(error))
        try:
            headers = _headers(endpoint, job, at, body, content_type, soap_headers)
        except ValueError as error:  # a secret not in the whsec_ form: never unsigned
            return _failed(at, FC.FAILURE_CLASS_CONFIGURATION, f"cannot sign: {error}")
        sent: dict[str, bytes | str] = {"request_body": body, "request_content_type": content_type}
        authentication = endpoint.authentication
        grant = refreshable(authentication)
        for refreshed in (False, True):
            try:
                authorization = await self._credentials.authorization(
                    subscription.id, subscription.version, authentication
                )
            except TokenFailure as error:
                return _failed(
                    at, _refused_or(error, FC.FAILURE_CLASS_OAUTH_TOKEN), error.message, **sent
                )
            except CredentialsUnusable as error:
                return _failed(at, FC.FAILURE_CLASS_CONFIGURATION, str(error), **sent)
            if authorization:
                headers["Authorization"] = authorization
            try:
                response = await self._outbound.post(
                    subscription.webhook.url,
                    body,
                    headers,
                    client_certificate=endpoint.client_certificate,
                    timeout=self._timeout,
                )
            except OutboundError as error:
                return _failed(at, error.failure_class, error.message, **sent)
            if response.status == 401 and grant and authorization and not refreshed:
                # The token may have been revoked before its expiry: one fresh token, once.
                self._credentials.invalidate(subscription.id, subscription.version, authorization)
                continue
            break
        return self._outcome(
            response, subscription.webhook, started_at, started, url, sent, trace_headers
        )

    async def _body(
        self, endpoint: Endpoint, job: messages_pb2.DeliveryJob
    ) -> tuple[bytes, str, dict[str, str]]:
        webhook = endpoint.subscription.webhook
        if webhook.type != common_pb2.WEBHOOK_TYPE_SOAP:
            return job.payload_json, JSON, {}
        envelope = json.loads(job.payload_json)
        request = await self._soap.build(webhook.soap, endpoint.key, envelope)
        return request.body, request.content_type, request.headers

    def _outcome(
        self,
        response: HttpResponse,
        webhook: common_pb2.Webhook,
        started_at: datetime,
        started: float,
        url: str,
        sent: Mapping[str, bytes | str],
        trace_headers: Mapping[str, str],
    ) -> AttemptResult:
        status = response.status
        duration_ms = int((time.monotonic() - started) * 1000)
        common = {
            "started_at": started_at,
            "duration_ms": duration_ms,
            "url": url,
            "status_code": status,
            "response_snippet": response.snippet,
            "request_body": sent["request_body"],
            "request_content_type": sent["request_content_type"],
            "span_context": trace_headers,
        }
        fault = parse_fault(response.body) if webhook.type == common_pb2.WEBHOOK_TYPE_SOAP else None
        outcome = response_outcome(status, response.headers, fault, started_at)
        return AttemptResult(
            failure_class=outcome.failure_class,
            message=outcome.message,
            retry_after=outcome.retry_after,
            final=outcome.final,
            **common,  # type: ignore[arg-type]
        )


# An attempt's start, as its result shows it: (started_at, time.monotonic() then, the URL
# as shown, the attempt's trace headers).
_Start = tuple[datetime, float, str, Mapping[str, str]]


def _failed(at: _Start, failure_class: int, message: str, **more: object) -> AttemptResult:
    """The result of an attempt that failed before a response (or without one)."""
    started_at, started, url, trace_headers = at
    return AttemptResult(
        started_at=started_at,
        duration_ms=int((time.monotonic() - started) * 1000),
        url=url,
        failure_class=failure_class,
        message=message,
        span_context=trace_headers,
        **more,  # type: ignore[arg-type]
    )


def _headers(
    endpoint: Endpoint,
    job: messages_pb2.DeliveryJob,
    at: _Start,
    body: bytes,
    content_type: str,
    soap_headers: Mapping[str, str],
) -> dict[str, str]:
    """The request's headers but ``Authorization``; ValueError when a secret cannot sign."""
    started_at, _, _, trace_headers = at
    headers = {
        "Content-Type": content_type,
        "User-Agent": USER_AGENT,
        "webhook-attempt": str(job.attempt),
        **soap_headers,
        **trace_headers,
    }
    if endpoint.signing_secrets:
        headers.update(
            signature_headers(job.delivery_id, started_at, body, endpoint.signing_secrets)
        )
    return headers


def _span_attributes(target: _Target, job: messages_pb2.DeliveryJob) -> dict[str, str | int]:
    return {
        "http.request.method": "POST",
        "url.full": target.shown,
        "server.address": target.host,
        "server.port": target.port,
        "webhooks.delivery_id": job.delivery_id,
        "webhooks.subscription_id": job.subscription_id,
        "webhooks.attempt": job.attempt,
        "webhooks.series": job.series,
    }


def _record_on_span(span: trace.Span, result: AttemptResult) -> None:
    if result.status_code:
        span.set_attribute("http.response.status_code", result.status_code)
    if not result.succeeded:
        span.set_attribute("error.type", failure_name(result.failure_class))
        span.set_status(Status(StatusCode.ERROR, result.message[:256]))


def _refused_or(error: Exception, failure_class: int) -> int:
    """A token URL or WSDL URL the outbound guard refused is a refused destination, not a
    token or settings problem: the operator's allow-list is what would change it."""
    cause = error.__cause__
    if isinstance(cause, BlockedDestination) or (
        isinstance(cause, OutboundError)
        and cause.failure_class == FC.FAILURE_CLASS_BLOCKED_DESTINATION
    ):
        return FC.FAILURE_CLASS_BLOCKED_DESTINATION
    return failure_class


def gone(job: messages_pb2.DeliveryJob, reason: str) -> AttemptResult:
    """The attempt that is not made: the subscription was deleted or deactivated."""
    return AttemptResult(
        started_at=datetime.now(UTC),
        duration_ms=0,
        url="",
        failure_class=FC.FAILURE_CLASS_SUBSCRIPTION_GONE,
        message=reason,
        request_body=job.payload_json,
        request_content_type=JSON,
        final=True,
    )


def unusable(job: messages_pb2.DeliveryJob, url: str, reason: str) -> AttemptResult:
    """The attempt that cannot be made as the settings are (a fix applies to the retry)."""
    return AttemptResult(
        started_at=datetime.now(UTC),
        duration_ms=0,
        url=shown_url(url),
        failure_class=FC.FAILURE_CLASS_CONFIGURATION,
        message=reason,
        request_body=job.payload_json,
        request_content_type=JSON,
    )


_w3c_only: tuple[object, bool] = (None, False)  # (global propagator, only W3C ones?)
_W3C_FIELDS = frozenset({"traceparent", "tracestate", "baggage"})


def w3c_propagation_only() -> bool:
    """Whether the configured propagators are only the W3C ones (the default: trace
    context and baggage), so that a ``traceparent`` may be read and written directly."""
    global _w3c_only
    textmap = propagate.get_global_textmap()
    if _w3c_only[0] is not textmap:
        fields = set(textmap.fields)
        _w3c_only = (textmap, "traceparent" in fields and fields <= _W3C_FIELDS)
    return _w3c_only[1]


def propagated(context: Context, span_context: SpanContext) -> dict[str, str]:
    """The trace headers of ``context`` (whose span's context is ``span_context``): what
    ``inject_headers({}, context)`` returns, written directly in the common case (W3C
    propagators, no trace state, no baggage), where the propagators cost far more than
    writing the header (bench/README.md)."""
    if (
        w3c_propagation_only()
        and span_context.is_valid
        and not span_context.trace_state
        and not baggage.get_all(context)
    ):
        return {
            "traceparent": f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
            f"-{span_context.trace_flags:02x}"
        }
    return inject_headers({}, context)


def drops_unsampled(*, remote: bool) -> bool:
    """Whether the attempts' tracer makes no recording span under a parent that is not
    sampled (``webhooks_telemetry.tracing.drops_unsampled_spans``)."""
    return drops_unsampled_spans(tracer, remote=remote)


@dataclass(frozen=True)
class _Target:
    shown: str  # see shown_url
    host: str
    port: int


@functools.lru_cache(maxsize=4096)
def _target(url: str) -> _Target:
    """What the span and the record show of a webhook URL: parsed once per URL, not per
    attempt (urlsplit twice per attempt showed on the hot path)."""
    split = urlsplit(url)
    return _Target(shown_url(url), split.hostname or "", split.port or 443)
