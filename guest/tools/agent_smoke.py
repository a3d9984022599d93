#!/usr/bin/env python3
"""End-to-end test of the webvm guest agent over its serial stream.

Independent of the browser: give it the agent's byte stream (a unix socket
from qemu's ``-serial unix:...``) and, optionally, the console log and the 9p
share directory. Prints one line per check with its timing and ends with
``N passed, N failed``; exits non-zero when a check failed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wv1 import Agent, encode_frame, unb64  # noqa: E402

RESULTS: list[tuple[str, bool, float, str]] = []


def check(name):
    def deco(fn):
        def run(*a):
            t0 = time.monotonic()
            try:
                note = fn(*a) or ""
                ok = True
            except Exception as e:  # report and go on
                note = f"{type(e).__name__}: {e}"
                if os.environ.get("WV1_TRACE"):
                    traceback.print_exc()
                ok = False
            dt = time.monotonic() - t0
            RESULTS.append((name, ok, dt, note))
            print(f"{'ok  ' if ok else 'FAIL'} {name:<38} {dt * 1000:8.0f} ms  {note}", flush=True)
            return ok
        run.__name__ = fn.__name__
        return run
    return deco


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


@check("HELLO from the agent")
def t_hello(a: Agent, args):
    h = a.wait_hello(args.boot_timeout)
    expect(h.get("version") == "1", f"version {h.get('version')}")
    expect(len(h.get("instance", "")) == 32, "instance id")
    return f"instance={h.get('instance')[:8]}… pid={h.get('pid')} features={h.get('features')}"


@check("console ready marker")
def t_marker(a: Agent, args):
    if not args.console:
        return "skipped (no --console)"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(args.console, "rb") as f:
            data = f.read()
        for line in data.splitlines():
            if b"webvm-ready" in line:
                return line.decode(errors="replace").strip()
        time.sleep(0.2)
    raise AssertionError("no webvm-ready on the console")


@check("boot stage times (guest uptime)")
def t_boot_times(a: Agent, args):
    r = a.run(["cat", "/run/webvm/boot-times"])
    expect(r.code == 0, r.stderr)
    return ", ".join(" ".join(reversed(l.split())) for l in r.stdout.decode().splitlines())


@check("PING -> PONG with the same instance")
def t_ping(a: Agent, args):
    f = a.ping()
    expect(f.kind == "PONG" and f.get("instance") == a.instance, f"{f}")


@check("uname -m is i686, exit 0")
def t_uname(a: Agent, args):
    r = a.run(["uname", "-m"])
    expect(r.code == 0 and r.stdout == b"i686\n", f"{r.code} {r.stdout!r} {r.stderr!r}")
    return f"pid={r.pid}"


@check("false exits 1")
def t_false(a: Agent, args):
    r = a.run(["false"])
    expect(r.code == 1 and r.signal is None, f"{r.code} {r.signal}")


@check("stdout and stderr are separate")
def t_streams(a: Agent, args):
    r = a.run(["sh", "-c", "echo out; echo err >&2; echo out2; exit 3"])
    expect(r.stdout == b"out\nout2\n", repr(r.stdout))
    expect(r.stderr == b"err\n", repr(r.stderr))
    expect(r.code == 3, f"code {r.code}")


@check("env and cwd per command")
def t_env(a: Agent, args):
    r = a.run(["sh", "-c", 'echo "$FOO|$HOME"; pwd'], env={"FOO": "b a r"}, cwd="/tmp")
    expect(r.stdout == b"b a r|/root\n/tmp\n", repr(r.stdout))
    r = a.run(["/usr/bin/env"], env={"ONLY": "1"}, clear_env=True)
    expect(r.stdout == b"ONLY=1\n", repr(r.stdout))


@check("missing program -> ERROR errno 2")
def t_enoent(a: Agent, args):
    r = a.run(["/no/such/program"])
    expect(r.error is not None and r.pid is None, f"{r}")
    expect(r.events[-1].get("errno") == "2", f"{r.events[-1]}")
    return r.error


@check("binary output round trip (64 KiB random)")
def t_binary(a: Agent, args):
    r = a.run(["sh", "-c", "head -c 65536 /dev/urandom > /tmp/x && sha256sum /tmp/x"])
    expect(r.code == 0, f"{r.code} {r.stderr!r}")
    guest_sum = r.stdout.split()[0].decode()
    t0 = time.monotonic()
    r = a.run(["cat", "/tmp/x"])
    dt = time.monotonic() - t0
    expect(r.code == 0 and len(r.stdout) == 65536, f"{r.code} {len(r.stdout)}")
    expect(hashlib.sha256(r.stdout).hexdigest() == guest_sum, "sha256 differs")
    frames = sum(1 for e in r.events if e.kind == "OUT")
    return f"{len(r.stdout) / dt / 1024:.0f} KiB/s guest->host in {frames} frames"


@check("stdin: all 256 byte values through cat")
def t_stdin(a: Agent, args):
    data = bytes(range(256)) * 64 + b"\x00\n\r\xff"
    r = a.start(["cat"], stdin=True)
    a.wait_started(r)
    t0 = time.monotonic()
    for i in range(0, len(data), 4096):
        a.write_stdin(r, data[i:i + 4096])
    a.close_stdin(r)
    a.wait(r)
    dt = time.monotonic() - t0
    expect(r.code == 0 and r.stdout == data, f"{r.code} {len(r.stdout)} bytes")
    return f"{len(data) / dt / 1024:.0f} KiB/s host->guest->host"


@check("streamed output of a long-running process")
def t_stream(a: Agent, args):
    r = a.start(["sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 1; done"])
    seen = []
    a.wait_until(lambda: r.stdout.count(b"\n") >= 1, 20, "first line")
    seen.append((time.monotonic(), r.done))
    a.wait(r, 30)
    outs = [e for e in r.events if e.kind == "OUT"]
    expect(not seen[0][1], "first line only arrived with EXIT")
    expect(len(outs) >= 2 and r.stdout == b"tick 1\ntick 2\ntick 3\n", f"{len(outs)} {r.stdout!r}")
    return f"{len(outs)} OUT frames"


@check("concurrent commands")
def t_concurrent(a: Agent, args):
    t0 = time.monotonic()
    rs = [a.start(["sh", "-c", f"sleep 2; echo {i}"]) for i in range(4)]
    for r in rs:
        a.wait(r, 60)
    dt = time.monotonic() - t0
    expect([r.stdout for r in rs] == [b"0\n", b"1\n", b"2\n", b"3\n"], f"{[r.stdout for r in rs]}")
    expect(dt < 7.5, f"took {dt:.1f}s, not concurrent")
    return f"4 x sleep 2 in {dt:.1f}s"


@check("background process group + KILL")
def t_kill(a: Agent, args):
    r = a.start(["sh", "-c", "sleep 1000 & sleep 1001 & echo started; wait"])
    a.wait_until(lambda: b"started" in r.stdout, 20, "started")
    listed = a.list()
    expect((r.id, r.pid) in listed, f"LIST {listed}")
    a.kill(r, 15)
    a.wait(r, 20)
    expect(r.signal == 15, f"code={r.code} signal={r.signal}")
    time.sleep(0.5)
    left = a.run(["sh", "-c", "ps -eo pgid=,comm= | awk -v g=%d '$1 == g' " % r.pid])
    expect(left.stdout.strip() == b"", f"group left: {left.stdout!r}")
    return f"pgid {r.pid} gone"


@check("guest-side timeout")
def t_timeout(a: Agent, args):
    t0 = time.monotonic()
    r = a.run(["sleep", "100"], timeout_ms=1000, grace_ms=500)
    dt = time.monotonic() - t0
    expect(r.timed_out and r.signal == 15, f"{r}")
    return f"exit after {dt:.1f}s"


@check("malformed request -> ERROR, agent continues")
def t_malformed(a: Agent, args):
    a.send_raw(b"~WV1 PING 777 *deadbeef\n")
    f = a.wait_error(777)
    expect(f.kind == "ERROR" and b"checksum" in unb64(f.get("msg")), f"{f}")
    a.send_raw(b"just noise\n")
    a.send_raw(encode_frame("NOPE", 778))
    f = a.wait_error(778)
    expect(f.kind == "ERROR", f"{f}")
    a.ping()


@check("STATS")
def t_stats(a: Agent, args):
    s = a.stats()
    expect("MemTotal:" in s["meminfo"], "meminfo")
    expect(s["stat"].startswith("cpu "), "stat")
    expect(s["df"].strip().endswith("/"), f"df {s['df']!r}")
    expect(s["procs"] > 3, "procs")
    mem = [l for l in s["meminfo"].splitlines() if l.startswith(("MemTotal", "MemAvailable"))]
    df = s["df"].splitlines()[-1].split()
    return f"{' '.join(' '.join(m.split()) for m in mem)}; / {df[2]}/{df[1]} KiB used; procs={s['procs']}"


@check("network: eth0 has 192.168.86.100/24")
def t_net(a: Agent, args):
    r = a.run(["ip", "-o", "-4", "addr", "show"])
    expect(b"192.168.86.100/24" in r.stdout, repr(r.stdout))
    r = a.run(["ip", "route"])
    expect(b"default via 192.168.86.1" in r.stdout, repr(r.stdout))


@check("9p share at /mnt/host")
def t_9p(a: Agent, args):
    if not args.share:
        return "skipped (no --share)"
    with open(os.path.join(args.share, "from-host.txt"), "wb") as f:
        f.write(b"hello from the host\n")
    r = a.run(["cat", "/mnt/host/from-host.txt"])
    expect(r.stdout == b"hello from the host\n", f"{r.stdout!r} {r.stderr!r}")
    r = a.run(["sh", "-c", "echo hello from the guest > /mnt/host/from-guest.txt"])
    expect(r.code == 0, r.stderr)
    with open(os.path.join(args.share, "from-guest.txt"), "rb") as f:
        expect(f.read() == b"hello from the guest\n", "guest file")


@check("PID 1 reaps orphans")
def t_zombies(a: Agent, args):
    a.run(["sh", "-c", "for i in 1 2 3 4 5; do (sleep 0.2 &) ; done"])
    time.sleep(1.5)
    r = a.run(["sh", "-c", "ps -eo stat=,pid=,comm= | awk '$1 ~ /^Z/'"])
    expect(r.stdout.strip() == b"", f"zombies: {r.stdout!r}")


@check("dpkg database intact")
def t_dpkg(a: Agent, args):
    r = a.run(["dpkg-query", "-W", "-f", "${Status}\\n", "dpkg", "bash", "perl-base"])
    expect(r.stdout == b"install ok installed\n" * 3, repr(r.stdout))
    r = a.run(["dpkg", "--audit"])
    expect(r.code == 0 and r.stdout == b"", repr(r.stdout))


@check("agent restart: new HELLO, pending call fails")
def t_restart(a: Agent, args):
    old = a.instance
    pending = a.start(["sleep", "100"])
    a.wait_started(pending)
    agent_pid = a.hello.get("pid")
    a.run(["kill", agent_pid])
    t0 = time.monotonic()
    a.wait_until(lambda: a.instance != old, 30, "new HELLO")
    dt = time.monotonic() - t0
    expect(pending.error == "agent restarted", f"{pending}")
    r = a.run(["uname", "-m"])
    expect(r.code == 0, "exec after restart")
    a.run(["pkill", "-x", "sleep"])
    return f"new instance after {dt:.1f}s"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--socket", required=True, help="unix socket carrying the agent's serial port")
    p.add_argument("--console", help="file receiving the guest console (ttyS0)")
    p.add_argument("--share", help="host directory exported to the guest as 9p tag host9p")
    p.add_argument("--boot-timeout", type=float, default=300)
    args = p.parse_args()

    t0 = time.monotonic()
    a = Agent.connect_unix(args.socket)
    tests = [t_hello, t_marker, t_boot_times, t_ping, t_uname, t_false, t_streams, t_env, t_enoent, t_binary,
             t_stdin, t_stream, t_concurrent, t_kill, t_timeout, t_malformed, t_stats, t_net,
             t_9p, t_zombies, t_dpkg, t_restart]
    if not t_hello(a, args):
        print("0 passed, 1 failed")
        return 1
    print(f"     (agent up {time.monotonic() - t0:.1f}s after connecting; noise lines skipped: {a.noise_lines})")
    for t in tests[1:]:
        t(a, args)
    passed = sum(1 for r in RESULTS if r[1])
    failed = len(RESULTS) - passed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
