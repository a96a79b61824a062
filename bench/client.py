"""The benchmark's HTTP/1.1 client: one kept-alive connection read by an asyncio.Protocol as bytes arrive.

It is the least a benchmark against our own gunicorn needs (see load.py for why not httpx): requests written
as bytes, Content-Length and chunked bodies, a connection made again when the server has closed it, no
redirects followed, the body decoded only when asked for.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from email.utils import parsedate_to_datetime
from typing import cast, overload

TIMEOUT = 60.0  # seconds for a connection to open, or for a whole answer to arrive
MAX_HEAD = 64 * 1024  # a status line and headers longer than this are not an answer from our server


class ClientError(Exception):
    """The connection failed, or what came back was not an HTTP/1.1 answer that could be read."""


class Stale(ClientError):
    """A kept-alive connection closed before any byte of the answer: the server's idle timeout won the race."""


class Headers:
    """An answer's header fields; names are looked up case-insensitively, repeated fields joined by commas."""

    __slots__ = ("_fields", "set_cookie")

    def __init__(self, fields: dict[str, str], set_cookie: list[str]) -> None:
        self._fields = fields  # lower-cased names
        self.set_cookie = set_cookie  # each Set-Cookie field apart (they cannot be joined with commas)

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    def get(self, name: str, default: str | None = None) -> str | None:
        return self._fields.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def __repr__(self) -> str:
        return f"Headers({self._fields!r}, set_cookie={self.set_cookie!r})"


class Response:
    """One answer: status, headers and the body as bytes, decoded to ``text`` only when that is asked for."""

    __slots__ = ("_text", "content", "headers", "method", "status_code")

    def __init__(self, method: str, status_code: int, headers: Headers, content: bytes) -> None:
        self.method = method  # of the request this answers
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self._text: str | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            charset = "utf-8"
            kind = self.headers.get("content-type", "")
            if "charset=" in kind:
                charset = kind.split("charset=", 1)[1].split(";", 1)[0].strip().strip('"') or charset
            try:
                self._text = self.content.decode(charset, errors="replace")
            except LookupError:
                self._text = self.content.decode("utf-8", errors="replace")
        return self._text

    def __repr__(self) -> str:
        return f"<Response {self.method} {self.status_code}, {len(self.content)} bytes>"


_NO_BODY = -1  # framing of the body being read: none, Content-Length, chunked, or until the server closes
_LENGTH = 0
_CHUNKED = 1
_UNTIL_CLOSE = 2


class Connection(asyncio.Protocol):
    """One kept-alive connection, one request at a time; parses the answer as its bytes arrive.

    A plain ``asyncio.Protocol`` rather than streams: an answer costs one future and, for most pages, one
    ``data_received`` call, with no coroutine per read.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.answered = 0  # answers read on this connection
        self.waiter: asyncio.Future[Response] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.method = ""
        self._reset()

    def _reset(self) -> None:
        self.head = b""  # bytes of the status line and headers while they are incomplete
        self.got_bytes = False
        self.status = 0
        self.headers: Headers | None = None
        self.keep_alive = True
        self.framing = _NO_BODY
        self.remaining = 0  # of a Content-Length body
        self.parts: list[bytes] = []  # of the body
        self.chunk_buffer = bytearray()
        self.chunk_size = -1  # of the chunk being read; -1 while its size line is awaited

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass, but has its methods

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            self.close()  # bytes nobody asked for (or for a request given up on): the stream is out of step
            return
        self.got_bytes = True
        try:
            self._feed(data)
        except (ValueError, IndexError) as exc:
            self._fail(ClientError(f"unreadable answer to {self.method}: {exc}"))

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is None or self.waiter.done():
            return
        if self.framing == _UNTIL_CLOSE:
            self._finish(b"".join(self.parts))
        elif not self.got_bytes and self.answered:
            self._fail(Stale(f"connection closed before the answer to {self.method}"))
        else:
            detail = f": {exc}" if exc else ""
            self._fail(ClientError(f"connection closed during the answer to {self.method}{detail}"))

    # Requests
    def send(self, method: str, payload: bytes) -> asyncio.Future[Response]:
        if self.waiter is not None and not self.waiter.done():
            raise RuntimeError("one request at a time on a connection")
        assert self.transport is not None
        self.method = method
        self.waiter = waiter = self.loop.create_future()
        self.timer = self.loop.call_later(TIMEOUT, self._timed_out)
        self.transport.write(payload)
        return waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _timed_out(self) -> None:
        self.timer = None
        self._fail(ClientError(f"no answer to {self.method} within {TIMEOUT:.0f} s"))

    def _fail(self, exc: ClientError) -> None:
        self.close()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    # Parsing
    def _feed(self, data: bytes) -> None:
        if self.headers is None:
            if self.head:
                data = self.head + data
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > MAX_HEAD:
                    raise ValueError("headers too long")
                self.head = data
                return
            self.head = b""
            self._parse_head(data[:end])
            data = data[end + 4 :]
            if self.headers is None:  # an interim (1xx) answer: the real one follows
                if data:
                    self._feed(data)
                return
        framing = self.framing
        if framing == _LENGTH:
            if data:
                self.parts.append(data)
                self.remaining -= len(data)
            if self.remaining <= 0:
                body = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
                if self.remaining < 0:  # more than announced: keep what was announced, drop the connection
                    body = body[: len(body) + self.remaining]
                    self.keep_alive = False
                self._finish(body)
        elif framing == _CHUNKED:
            self.chunk_buffer += data
            self._read_chunks()
        elif framing == _UNTIL_CLOSE:
            if data:
                self.parts.append(data)
        else:
            if data:
                self.keep_alive = False  # bytes after a body-less answer
            self._finish(b"")

    def _parse_head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"status line {lines[0][:80]!r}")
        status = int(rest[:3])
        if 100 <= status < 200 and status != 101:
            return  # 100 Continue and the like
        fields: dict[str, str] = {}
        set_cookie: list[str] = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                continue
            name = name.strip().lower()
            value = value.strip()
            if name == "set-cookie":
                set_cookie.append(value)
            elif name in fields:
                fields[name] += ", " + value
            else:
                fields[name] = value
        self.status = status
        self.headers = Headers(fields, set_cookie)
        connection = fields.get("connection", "").lower()
        self.keep_alive = "close" not in connection and (version != "HTTP/1.0" or "keep-alive" in connection)
        if self.method == "HEAD" or status in (204, 304) or status < 200:
            self.framing = _NO_BODY
        elif "chunked" in fields.get("transfer-encoding", "").lower():
            self.framing = _CHUNKED
        elif "content-length" in fields:
            self.framing = _LENGTH
            self.remaining = int(fields["content-length"])
            if self.remaining < 0:
                raise ValueError("negative Content-Length")
        else:
            self.framing = _UNTIL_CLOSE
            self.keep_alive = False

    def _read_chunks(self) -> None:
        buffer = self.chunk_buffer
        at = 0
        while True:
            if self.chunk_size < 0:
                line_end = buffer.find(b"\r\n", at)
                if line_end < 0:
                    break
                size = int(bytes(buffer[at:line_end]).split(b";", 1)[0].strip(), 16)
                if size == 0:  # the last chunk; then optional trailer fields and an empty line
                    if buffer.startswith(b"\r\n", line_end + 2):
                        tail = line_end + 4
                    else:
                        trailer_end = buffer.find(b"\r\n\r\n", line_end + 2)
                        if trailer_end < 0:
                            break
                        tail = trailer_end + 4
                    if tail < len(buffer):
                        self.keep_alive = False
                    self._finish(b"".join(self.parts))
                    return
                self.chunk_size = size
                at = line_end + 2
            if len(buffer) - at < self.chunk_size + 2:
                break
            end = at + self.chunk_size
            if buffer[end : end + 2] != b"\r\n":
                raise ValueError("chunk not followed by CRLF")
            self.parts.append(bytes(buffer[at:end]))
            at = end + 2
            self.chunk_size = -1
        del buffer[:at]

    def _finish(self, body: bytes) -> None:
        assert self.headers is not None and self.waiter is not None
        response = Response(self.method, self.status, self.headers, body)
        keep_alive = self.keep_alive
        self._reset()
        self.answered += 1
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not keep_alive:
            self.close()
        if not self.waiter.done():
            self.waiter.set_result(response)


def cookie_expired(max_age: str | None, expires: str | None) -> bool:
    if max_age is not None:  # Max-Age wins over Expires (RFC 6265, 5.3)
        try:
            return int(max_age) <= 0
        except ValueError:
            pass
    if expires:
        try:
            when = parsedate_to_datetime(expires)
        except (TypeError, ValueError):
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return when <= dt.datetime.now(dt.UTC)
    return False
