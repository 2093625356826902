"""The zeep transport of WSDL loading (``FetchTransport``): every document zeep asks for,
the WSDL and each import, goes through the caller's guarded ``fetch``, https only (plain
http solely for the ``wsdl_url`` itself), at most ``MAX_DOCUMENTS`` documents of
``MAX_DOCUMENT_BYTES`` each; what is refused is said without the URL's credentials."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import zeep

from webhooks_sender.soap_envelope import cut, detail

__all__ = ["MAX_DOCUMENTS", "MAX_DOCUMENT_BYTES", "FetchTransport", "Refused", "redacted"]

log = logging.getLogger(__name__)

MAX_DOCUMENTS = 32  # WSDL + imported WSDLs and schemas, per subscription
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024


def scrubbed(exc: BaseException, url: str) -> str:
    """The fetch error's message without what in a URL may carry credentials.

    Errors often quote the URL, not always as given (re-encoded, userinfo dropped), so
    every query string and userinfo in the text goes, not only the URL's exact text.
    """
    text = detail(exc).replace(url, redacted(url))
    text = re.sub(r"//[^/\s'\"@]*@", "//", text)
    return re.sub(r"\?[^\s'\"]*", "", text)


def redacted(url: str) -> str:
    """``url`` without user info, query and fragment: they may carry credentials."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:
        return "<unparseable URL>"
    if not parts.scheme:
        return cut(url.split("?", 1)[0], 200)
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# --------------------------------------------------------------------------------------
# WSDL loading


class Refused(Exception):
    """Raised inside zeep's parse to stop it; the real reason is on the transport."""


class FetchTransport(zeep.Transport):  # type: ignore[misc]
    """A zeep transport whose only way out is the caller's guarded ``fetch``.

    zeep loads synchronously from the worker thread; each load is handed to the event
    loop and awaited there, so the guarded transport's vetting applies to the WSDL and
    to every import.
    """

    def __init__(
        self,
        fetch: Callable[[str], Awaitable[bytes]],
        loop: asyncio.AbstractEventLoop,
        timeout: float,
    ) -> None:
        # Not Transport.__init__: it opens a requests Session, which must never be used.
        self.cache = None
        self.load_timeout = timeout
        self.operation_timeout = None
        self.logger = log
        self.session = None
        self._close_session = False
        self._fetch = fetch
        self._loop = loop
        self.documents: dict[str, bytes] = {}
        self.root: str | None = None  # the wsdl_url: the one location that may be http
        self.problem: str | None = None
        self.cause: BaseException | None = None

    def load(self, url: str) -> bytes:
        if self.problem is not None:
            raise Refused(self.problem)
        if url in self.documents:
            return self.documents[url]
        scheme = urlsplit(str(url)).scheme.lower()
        if scheme not in ("https", "http"):
            return self._refuse(
                f"cannot fetch {redacted(str(url))!r}: only absolute http(s) URLs are fetched "
                "(an inline WSDL document cannot import relative locations)"
            )
        if scheme == "http" and url != self.root:
            return self._refuse(
                f"cannot fetch {redacted(str(url))!r}: WSDL imports are fetched over https only"
            )
        if len(self.documents) >= MAX_DOCUMENTS:
            return self._refuse(f"the WSDL imports more than {MAX_DOCUMENTS} documents")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:  # pragma: no cover - waiting here would deadlock the loop
            raise RuntimeError("WSDL documents are only loaded from a worker thread")
        future = asyncio.run_coroutine_threadsafe(self._get(url), self._loop)
        try:
            content = future.result(self.load_timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            return self._refuse(f"fetching {redacted(url)} timed out", exc)
        except Exception as exc:
            return self._refuse(f"cannot fetch {redacted(url)}: {scrubbed(exc, url)}", exc)
        if len(content) > MAX_DOCUMENT_BYTES:
            return self._refuse(f"{redacted(url)} is larger than {MAX_DOCUMENT_BYTES} bytes")
        self.documents[url] = content
        return content

    async def _get(self, url: str) -> bytes:
        return bytes(await self._fetch(url))

    def _refuse(self, problem: str, cause: BaseException | None = None) -> bytes:
        self.problem, self.cause = problem, cause
        raise Refused(problem)
