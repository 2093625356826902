"""SOAP 1.1 / 1.2 envelopes for SOAP subscriptions, and SOAP Fault parsing.

``SoapEnvelopes.build(soap, cache_key, envelope)`` turns the shaped payload (the JSON
envelope ``{"Event": {...}}`` as a dict) into a ``SoapRequest``: the envelope's bytes, the
content type and the extra headers. ``parse_fault(body)`` reads a SOAP Fault out of a
response body. ``SoapSettingsError`` says that the subscription's SOAP settings cannot be
used as they are (the caller records a failed attempt of class CONFIGURATION).

The envelope's XML (versions, actions, JSON to XML, the generic envelope) is
``soap_envelope.py``'s, what a WSDL adds ``wsdl.py``'s, faults ``soap_faults.py``'s; this
module decides which envelope a subscription gets and caches parsed WSDLs per
``cache_key``: loads of the same key share one fetch (single flight); failures of a
``wsdl_url`` are remembered for ``failure_ttl`` seconds so a dead WSDL server is not asked
again by every delivery waiting for it, failures of an inline document until evicted; a
remembered failure is raised with its fetch's exception as ``__cause__`` again, so a
refused destination stays one.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from webhooks.v1 import common_pb2
from webhooks_sender.soap_envelope import SoapRequest, SoapSettingsError, generic_request
from webhooks_sender.wsdl import Plan, load_plan

__all__ = ["SoapEnvelopes"]


@dataclass
class _Cached:
    plan: Plan | None
    error: str | None
    expires: float  # time.monotonic(); math.inf for what does not expire
    # The failed fetch's exception: the caller classes a refused destination by it.
    cause: BaseException | None = None


class SoapEnvelopes:
    """Builds the SOAP requests of subscriptions; WSDLs parsed once per ``cache_key``.

    ``fetch(url)`` is the guarded HTTP GET every WSDL and import goes through; it raises
    on a refused destination, a failed request or a non-2xx status.
    """

    def __init__(
        self,
        fetch: Callable[[str], Awaitable[bytes]],
        *,
        max_cached: int = 256,
        failure_ttl: float = 30.0,
        fetch_timeout: float = 60.0,
    ) -> None:
        self._fetch = fetch
        self._max_cached = max_cached
        self._failure_ttl = failure_ttl
        self._fetch_timeout = fetch_timeout
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._loading: dict[str, asyncio.Task[Plan]] = {}

    async def build(
        self, soap: common_pb2.SoapSettings, cache_key: str, envelope: Mapping[str, Any]
    ) -> SoapRequest:
        """The request for ``envelope`` (the shaped JSON payload as a dict).

        ``cache_key`` names the settings' version ("<subscription id>:<version>"): a WSDL
        is parsed once per key. Raises ``SoapSettingsError`` when the settings cannot be
        used.
        """
        if not soap.wsdl_url and not soap.wsdl_document:
            return generic_request(soap, envelope)
        plan = await self._plan(soap, cache_key)
        return plan.build(soap, envelope)

    def cached(self) -> int:
        """How many keys the cache holds (plans and remembered failures)."""
        return len(self._cache)

    async def _plan(self, soap: common_pb2.SoapSettings, key: str) -> Plan:
        cached = self._cache.get(key)
        if cached is not None:
            if cached.expires > time.monotonic():
                self._cache.move_to_end(key)
                if cached.plan is not None:
                    return cached.plan
                raise SoapSettingsError(cached.error) from cached.cause
            del self._cache[key]
        task = self._loading.get(key)
        if task is None:
            task = asyncio.create_task(self._load(soap, key), name=f"wsdl {key}")
            self._loading[key] = task
            # Retrieved here so a load every waiter gave up on does not log as unretrieved.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        # shield: one waiter cancelled (its attempt timed out) must not cancel the load
        # the others wait for.
        return await asyncio.shield(task)

    async def _load(self, soap: common_pb2.SoapSettings, key: str) -> Plan:
        loop = asyncio.get_running_loop()
        try:
            plan = await asyncio.to_thread(load_plan, soap, self._fetch, loop, self._fetch_timeout)
        except SoapSettingsError as exc:
            ttl = self._failure_ttl if soap.wsdl_url else math.inf
            if ttl > 0:
                cause = exc.__cause__
                if cause is not None:  # its frames need not live as long as the entry
                    cause = cause.with_traceback(None)
                self._remember(key, _Cached(None, str(exc), time.monotonic() + ttl, cause))
            raise
        else:
            self._remember(key, _Cached(plan, None, math.inf))
            return plan
        finally:
            self._loading.pop(key, None)

    def _remember(self, key: str, entry: _Cached) -> None:
        self._cache[key] = entry
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
