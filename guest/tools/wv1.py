"""Host-side client for the webvm guest agent (WV1 protocol, see guest/PROTOCOL.md).

Standard library only. Works over any byte stream with a ``fileno()``: a unix
socket (qemu ``-serial unix:...``), a pty or a pipe. Used by the qemu smoke
test; also handy from a Python prompt::

    from wv1 import Agent
    a = Agent.connect_unix("/tmp/agent.sock")
    a.wait_hello(120)
    print(a.run(["uname", "-m"]))
"""

from __future__ import annotations

import base64
import os
import select
import socket
import time
from dataclasses import dataclass, field

MAGIC = b"~WV1"


class ProtocolError(Exception):
    pass


class AgentRestarted(Exception):
    """The agent sent a new HELLO while calls were pending."""


class CallTimeout(Exception):
    pass


def sum32(data: bytes) -> int:
    return sum(data) & 0xFFFFFFFF


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def encode_frame(kind: str, ident: int, fields: list[tuple[str, str]] = ()) -> bytes:
    body = f"~WV1 {kind} {ident}" + "".join(f" {k}={v}" for k, v in fields)
    return f"{body} *{sum32(body.encode()):08x}\n".encode("ascii")


@dataclass
class Frame:
    kind: str
    id: int
    fields: list[tuple[str, str]]

    def get(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.fields:
            if k == key:
                return v
        return default

    def all(self, key: str) -> list[str]:
        return [v for k, v in self.fields if k == key]


def parse_frame(line: bytes) -> Frame:
    line = line.rstrip(b"\r")
    at = line.find(MAGIC)
    if at < 0:
        raise ProtocolError("not a frame")
    line = line[at:]
    if len(line) < 14 or line[-10:-8] != b" *":
        raise ProtocolError("missing checksum")
    body, check = line[:-10], line[-8:]
    if int(check, 16) != sum32(body):
        raise ProtocolError("checksum mismatch")
    toks = body.decode("ascii").split(" ")
    if len(toks) < 3 or not toks[2].isdigit():
        raise ProtocolError("bad frame header")
    fields = []
    for t in toks[3:]:
        k, sep, v = t.partition("=")
        if not sep or not k:
            raise ProtocolError(f"bad field {t!r}")
        fields.append((k, v))
    return Frame(toks[1], int(toks[2]), fields)


@dataclass
class Result:
    id: int
    pid: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    code: int | None = None
    signal: int | None = None
    timed_out: bool = False
    error: str | None = None
    events: list[Frame] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.code is not None or self.signal is not None or self.error is not None


class Agent:
    def __init__(self, fd: int, sock: socket.socket | None = None):
        self.fd = fd
        self.sock = sock
        self.buf = b""
        self.next_id = 1
        self.instance: str | None = None
        self.hello: Frame | None = None
        self.calls: dict[int, Result] = {}
        self.replies: dict[int, Frame] = {}
        self.noise_lines = 0
        self.synced = False

    @classmethod
    def connect_unix(cls, path: str, timeout: float = 30.0) -> "Agent":
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                s.setblocking(False)
                return cls(s.fileno(), s)
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    # -------------------------------------------------------------- io

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            select.select([], [self.fd], [], 5)
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                continue
            view = view[n:]

    def _pump(self, timeout: float) -> None:
        r, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not r:
            return
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        if not chunk:
            raise ConnectionError("agent stream closed")
        self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            if not line.strip():
                continue
            try:
                f = parse_frame(line)
            except (ProtocolError, ValueError, UnicodeDecodeError):
                if self.synced:
                    raise
                self.noise_lines += 1
                continue
            self.synced = True
            self._dispatch(f)

    def _dispatch(self, f: Frame) -> None:
        if f.kind == "HELLO":
            old = self.instance
            self.instance = f.get("instance")
            self.hello = f
            if old is not None and old != self.instance:
                for r in self.calls.values():
                    if not r.done:
                        r.error = "agent restarted"
            return
        r = self.calls.get(f.id)
        if r is not None:
            r.events.append(f)
            if f.kind == "STARTED":
                r.pid = int(f.get("pid"))
            elif f.kind == "OUT":
                r.stdout += unb64(f.get("data"))
            elif f.kind == "ERR":
                r.stderr += unb64(f.get("data"))
            elif f.kind == "EXIT":
                if f.get("code") is not None:
                    r.code = int(f.get("code"))
                else:
                    r.signal = int(f.get("signal"))
                r.timed_out = f.get("timedout") == "1"
            elif f.kind == "ERROR":
                r.error = unb64(f.get("msg", "")).decode(errors="replace")
            return
        self.replies[f.id] = f

    def wait_until(self, pred, timeout: float, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            left = deadline - time.monotonic()
            if left <= 0:
                raise CallTimeout(f"timed out after {timeout}s waiting for {what}")
            self._pump(min(left, 0.5))

    # -------------------------------------------------------------- api

    def wait_hello(self, timeout: float = 180.0) -> Frame:
        return self.wait_until(lambda: self.hello, timeout, "HELLO")

    def _request(self, kind: str, fields: list[tuple[str, str]] = ()) -> int:
        ident = self.next_id
        self.next_id += 1
        self._send(encode_frame(kind, ident, list(fields)))
        return ident

    def _reply(self, ident: int, timeout: float) -> Frame:
        f = self.wait_until(lambda: self.replies.pop(ident, None), timeout, f"reply to {ident}")
        if f.kind == "ERROR":
            raise RuntimeError(unb64(f.get("msg", "")).decode(errors="replace"))
        return f

    def ping(self, timeout: float = 10.0) -> Frame:
        return self._reply(self._request("PING"), timeout)

    def stats(self, timeout: float = 20.0) -> dict:
        f = self._reply(self._request("GETSTATS"), timeout)
        out = {k: unb64(f.get(k, "")).decode() for k in ("meminfo", "stat", "df", "loadavg", "uptime")}
        out["procs"] = int(f.get("procs", "0"))
        out["managed"] = int(f.get("managed", "0"))
        return out

    def list(self, timeout: float = 10.0) -> list[tuple[int, int]]:
        f = self._reply(self._request("LIST"), timeout)
        return [tuple(int(x) for x in p.split(":")) for p in f.all("proc")]

    def start(self, argv, env=None, cwd=None, stdin=False, timeout_ms=None, grace_ms=None,
              clear_env=False) -> Result:
        fields = [("argv", b64(a.encode() if isinstance(a, str) else a)) for a in argv]
        for k, v in (env or {}).items():
            fields.append(("env", b64(f"{k}={v}".encode())))
        if clear_env:
            fields.append(("clearenv", "1"))
        if cwd:
            fields.append(("cwd", b64(cwd.encode())))
        if stdin:
            fields.append(("stdin", "1"))
        if timeout_ms:
            fields.append(("timeout", str(int(timeout_ms))))
        if grace_ms is not None:
            fields.append(("grace", str(int(grace_ms))))
        ident = self.next_id
        self.calls[ident] = Result(ident)
        self._request("EXEC", fields)
        return self.calls[ident]

    def wait_started(self, r: Result, timeout: float = 30.0) -> Result:
        self.wait_until(lambda: r.pid is not None or r.done, timeout, f"start of {r.id}")
        return r

    def wait(self, r: Result, timeout: float = 60.0) -> Result:
        self.wait_until(lambda: r.done, timeout, f"exit of {r.id}")
        return r

    def run(self, argv, timeout: float = 60.0, **kw) -> Result:
        return self.wait(self.start(argv, **kw), timeout)

    def write_stdin(self, r: Result, data: bytes, timeout: float = 30.0) -> None:
        self._reply(self._request("STDIN", [("proc", str(r.id)), ("data", b64(data))]), timeout)

    def close_stdin(self, r: Result, timeout: float = 30.0) -> None:
        self._reply(self._request("CLOSE", [("proc", str(r.id))]), timeout)

    def kill(self, r: Result, sig: int = 15, group: bool = True, timeout: float = 10.0) -> None:
        fields = [("proc", str(r.id)), ("signal", str(sig))]
        if not group:
            fields.append(("group", "0"))
        self._reply(self._request("KILL", fields), timeout)

    def send_raw(self, data: bytes) -> None:
        self._send(data)

    def wait_error(self, ident: int, timeout: float = 10.0) -> Frame:
        return self.wait_until(lambda: self.replies.pop(ident, None), timeout, f"reply to {ident}")
