#!/usr/bin/env python3
"""Soak and hostile-peer harness for the tcp-lab echo server (Python 3.11, standard library only).

Wire format: 4 ASCII decimal digits (zero padded) giving the body's byte length, then the body
(MS949 / cp949 text, at most 9999 bytes). The server echoes each frame back byte-exact.

The harness either attaches to a running server (--port P [--pid PID]) or spawns one
(--spawn "tcp-lab server --port 0 ..."), runs well-behaved clients and a hostile mix for
--duration seconds, prints one status line every --interval seconds and a summary at the end.
Exit status: 0 when the well-behaved clients saw no corrupted echo, 1 when they did, 2 when the
harness could not start (no server, bad options).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import random
import re
import resource
import selectors
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

PREFIX_LEN = 4
MAX_BODY = 9999
CHARSET = "cp949"

EXAMPLES = """\
examples:
  # memory soak: 1,000,000 short connections (8 clients, 1 frame each), a status line every
  # 10 s with RSS and fds; the run ends at 1,000,000 connections (add --rst-close if the
  # client side runs out of ephemeral ports to TIME_WAIT)
  python3 scripts/soak.py --spawn "/tmp/tcp-lab-baseline server --port 0 --format text" \\
      --clients 8 --frames 1 --total-conns 1000000 --duration 0

  # 300 idle holders + 1 well-behaved client for 30 s: the client's success ratio shows whether
  # idle peers lock it out (the server's default --max-conns is 256)
  python3 scripts/soak.py --spawn "/tmp/tcp-lab-baseline server --port 0" \\
      --idle 300 --clients 1 --duration 30

  # one connection carrying 20,000 frames of 9,999 bytes, each echo verified; RSS before/after
  python3 scripts/soak.py --spawn "/tmp/tcp-lab-baseline server --port 0" \\
      --clients 1 --one-conn-frames 20000 --frame-size 9999 --duration 600

  # the pipelining attack: 1 peer sends `0001x` back to back (reading its echoes in another
  # thread) while the server's stdout is a pipe nobody reads; 1 well-behaved client beside it
  # must still get its echoes; the summary gives the server's peak RSS (VmHWM)
  python3 scripts/soak.py --spawn "target/release/tcp-lab server --port 0" --stdout-unread \\
      --pipeliners 1 --clients 1 --hold-conn --duration 60

  # attach to a server that is already running (pid for RSS / fd readings)
  python3 scripts/soak.py --port 9999 --pid 4242 --clients 4 --duration 60 --json
"""

DESCRIPTION = """\
Soak and hostile-peer harness for the tcp-lab echo server.

Well-behaved clients loop: connect, send --frames frames of random printable ASCII + Korean
(MS949) text, read each echo with exact reads (4-byte prefix, then n bytes), compare byte for
byte, close. Every frame a client meant to send ends up verified, lost (timeout, reset, closed
before the echo, connect failed) or corrupted (echo differs); when a connection fails, the
frames it had yet to send count as attempted and lost too. Success ratio = verified / attempted.
With --hold-conn / --one-conn-frames each client keeps one connection instead.

Hostile peers run beside them (each a count): idle holders, tricklers, non-readers, garbage
senders, terminal-escape senders, pipeliners (tiny frames back to back on one connection, echoes
read by another thread: the server echoes as fast as it can and must not queue what it reports
about them). Every 10 s (--interval) one line: elapsed, connections,
echoes verified/lost/corrupted, the server's RSS (VmRSS, MB) and open fds (/proc/PID/fd).
At the end a summary (start vs end RSS/fds, max RSS, success ratio, hostile findings);
--json prints that summary as one JSON line (the last line of stdout).

Exit status: 0 = well-behaved clients saw 0 corrupted echoes, 1 = they saw some, 2 = setup
error (server not found / not started)."""


# ----------------------------------------------------------------------------------------------
# Server process: spawn, find the port, drain stdout; RSS and fd readings from /proc.
# ----------------------------------------------------------------------------------------------

PORT_PATTERNS = [
    re.compile(rb"listening on (?:\[[^\]]*\]|[0-9.]+|[^\s:]+):(\d+)"),
    re.compile(rb"# tcp-lab server: port (\d+)"),
    re.compile(rb'"event"\s*:\s*"listening".*?"local"\s*:\s*"[^"]*:(\d+)"'),
    re.compile(rb'"event"\s*:\s*"session".*?"port"\s*:\s*(\d+)'),
    re.compile(rb'"port"\s*:\s*(\d+).*?"event"\s*:\s*"session"'),
]


def parse_port(line: bytes) -> int | None:
    for pat in PORT_PATTERNS:
        m = pat.search(line)
        if m:
            port = int(m.group(1))
            if 0 < port < 65536:
                return port
    return None


class SpawnedServer:
    """A server started by the harness. Its stdout is a pipe read by a thread (so the server never
    blocks on a full pipe), written to --server-log or discarded, and scanned for raw control bytes."""

    def __init__(self, cmd: str, log_path: str | None, unread: bool = False):
        self.cmd = cmd
        # --stdout-unread: after the port line nobody reads the pipe (`tcp-lab server | sleep 60`)
        self.unread = unread
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.out_bytes = 0
        self.out_lines = 0
        self.esc_bytes = 0  # raw 0x1b bytes in the server's stdout
        self.ctl_bytes = 0  # other raw C0 controls (not \n, not \t) and DEL
        self._thread: threading.Thread | None = None
        self._log = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, wait: float = 15.0) -> None:
        argv = shlex.split(self.cmd)
        if not argv:
            raise RuntimeError("--spawn: empty command")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, bufsize=0,
            start_new_session=True,
        )
        if self.log_path:
            self._log = open(self.log_path, "wb")
        fd = self.proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        buf = b""
        head = b""
        deadline = time.monotonic() + wait
        lines_seen = 0
        try:
            while self.port is None and time.monotonic() < deadline and lines_seen < 200:
                if not sel.select(timeout=max(0.0, min(0.5, deadline - time.monotonic()))):
                    if self.proc.poll() is not None:
                        break
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                head += chunk
                self._account(chunk)
                buf += chunk
                while b"\n" in buf and self.port is None:
                    line, buf = buf.split(b"\n", 1)
                    lines_seen += 1
                    self.port = parse_port(line)
        finally:
            sel.close()
        if self._log:
            self._log.write(head)
        if self.port is None:
            self.stop()
            raise RuntimeError(
                f"--spawn: no port found in the server's first output lines "
                f"(exit code {self.proc.returncode}); got: {head[:400]!r}"
            )
        if self.unread:
            return
        self._thread = threading.Thread(target=self._drain, name="server-stdout", daemon=True)
        self._thread.start()

    def _account(self, chunk: bytes) -> None:
        self.out_bytes += len(chunk)
        self.out_lines += chunk.count(b"\n")
        self.esc_bytes += chunk.count(b"\x1b")
        self.ctl_bytes += len(chunk) - len(chunk.translate(None, CTL_BYTES))

    def _drain(self) -> None:
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except OSError:
                break
            if not chunk:
                break
            self._account(chunk)
            if self._log:
                try:
                    self._log.write(chunk)
                except OSError:
                    pass

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 5.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                try:
                    self.proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
            except OSError:
                pass
        if self._thread:
            self._thread.join(timeout=grace)
        if self._log:
            try:
                self._log.close()
            except OSError:
                pass
        return self.proc.returncode


CTL_BYTES = bytes([c for c in range(0x00, 0x20) if c not in (0x0A, 0x09, 0x1B)] + [0x7F])


def proc_cpu_s(pid: int | None) -> float | None:
    """utime + stime of a process, in seconds."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rfind(b")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def proc_rss_mb(pid: int | None) -> float | None:
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def proc_hwm_mb(pid: int | None) -> float | None:
    """Peak RSS (VmHWM) of the process so far, in MB."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def proc_fds(pid: int | None) -> int | None:
    if not pid:
        return None
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # state is the field after the parenthesised command name
            stat = f.read()
        state = stat[stat.rfind(b")") + 2: stat.rfind(b")") + 3]
        return state not in (b"Z", b"X")
    except OSError:
        return False


def find_listener_pid(port: int) -> int | None:
    """Best effort: the pid holding a LISTEN socket on `port` (inode match over /proc/*/fd)."""
    inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f, None)
                for line in f:
                    parts = line.split()
                    if len(parts) < 10 or parts[3] != "0A":
                        continue
                    if int(parts[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(parts[9])
        except (OSError, ValueError):
            continue
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in targets:
                        return int(pid)
                except OSError:
                    continue
        except OSError:
            continue
    return None


def raise_fd_limit() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    for want in (target, 1 << 20, 65536, 20000, 8192):
        if want <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# ----------------------------------------------------------------------------------------------
# Frame bodies: random printable ASCII + Hangul, encoded in cp949, cut at character boundaries.
# ----------------------------------------------------------------------------------------------


class TextPool:
    """A block of cp949 text; bodies are slices of it that start and end on character boundaries."""

    def __init__(self, rng: random.Random, size: int = 1 << 17):
        out = bytearray()
        starts = []
        ascii_chars = [chr(c) for c in range(0x20, 0x7F)]
        while len(out) < size:
            if rng.random() < 0.6:
                ch = rng.choice(ascii_chars)
            else:
                ch = chr(rng.randint(0xAC00, 0xD7A3))  # every Hangul syllable is in cp949
            starts.append(len(out))
            out += ch.encode(CHARSET)
        self.data = bytes(out)
        self.starts = starts
        self.is_start = bytearray(len(out) + 1)
        for s in starts:
            self.is_start[s] = 1
        self.is_start[len(out)] = 1

    def piece(self, rng: random.Random, n: int) -> bytes:
        if n <= 0:
            return b""
        while True:
            s = self.starts[rng.randrange(len(self.starts))]
            if s + n <= len(self.data):
                break
        b = self.data[s:s + n]
        if not self.is_start[s + n]:
            b = b[:-1] + b"~"  # the cut fell inside a 2-byte character
        return b


def frame(body: bytes) -> bytes:
    return b"%04d" % len(body) + body


def make_body(pool: TextPool, rng: random.Random, n: int, tag: str) -> bytes:
    t = tag.encode("ascii")
    if n < len(t):
        return pool.piece(rng, n)
    return t + pool.piece(rng, n - len(t))


def pick_len(rng: random.Random, args) -> int:
    if args.frame_size is not None:
        return args.frame_size
    if args.big_frames and rng.random() < 0.2:
        return 9999 if rng.random() < 0.5 else rng.randint(9000, 9999)
    r = rng.random()
    if r < 0.005:
        return 0
    if r < 0.80:
        return rng.randint(1, 200)
    if r < 0.97:
        return rng.randint(201, 2000)
    return rng.randint(2001, 8999)


ESCAPE_PIECES = [
    "\x1b]2;PWNED\x07",          # set window title (OSC 2, BEL)
    "\x1b]0;title\x1b\\",        # OSC 0 with ST
    "\x1b]52;c;SGVsbG8=\x07",    # OSC 52: write the clipboard
    "\x1b[2J", "\x1b[H",         # clear screen, cursor home
    "\x1b[31mRED\x1b[0m",        # colours
    "\x1b[?1049h",               # alternate screen
    "\x1b[6n",                   # cursor position report: makes the terminal type a reply
    "\x1bc",                     # full terminal reset
    "\r\n", "\r", "\n", "\x08\x08\x08", "\x07", "\x00", "\x7f",
    "가짜 줄\r\n+9.999s server   #1 forged timeline line\n",
]
ESCAPE_RAW = [b"\x9b2J", b"\x9b[31m"]  # C1 CSI as a raw byte (not valid cp949)
ESCAPE_BAD_PREFIXES = [b"\x1b]2;PWNED\x07", b"\x1b[2J", b"\x1b]2;", b"\r\n\r\n", b"\x1b[6n"]

GARBAGE_FIXED = [
    b"ABCD" + b"hello",
    b"-001x",
    b"+123" + b"4" * 123,
    b" 123" + b"x" * 123,
    b"12\x00\x00",
    "１２３４가나다".encode(CHARSET),   # full-width digits
    b"0x1F" + b"z" * 31,
    b"\xff\xfe\xfd\xfc\xfb",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",   # TLS ClientHello start
    b"12a4",
]


# ----------------------------------------------------------------------------------------------
# Counters
# ----------------------------------------------------------------------------------------------


class Stats:
    def __init__(self):
        # well-behaved clients
        self.connections = 0          # connects that succeeded
        self.connect_failed = 0
        self.conn_ok = 0              # connections where every frame verified
        self.attempted = 0            # frames meant to be sent
        self.verified = 0
        self.corrupted = 0
        self.lost = 0
        self.lost_why = {"timeout": 0, "reset": 0, "eof": 0, "connect": 0, "after_corrupt": 0, "other": 0}
        self.bytes_echoed = 0
        self.corrupt_examples: list[str] = []
        # hostile
        self.idle_open = 0
        self.idle_peak = 0
        self.idle_connects = 0
        self.idle_rejected = 0        # closed by the server within 1 s of connecting
        self.idle_closed_later = 0    # closed by the server after >= 1 s (idle timeout)
        self.idle_connect_failed = 0
        self.idle_longest_open = 0.0
        self.trick_open = 0
        self.trick_connects = 0
        self.trick_bytes = 0
        self.trick_frames_done = 0
        self.trick_echo_ok = 0
        self.trick_echo_bad = 0
        self.trick_closed_by_server = 0
        self.trick_longest_open = 0.0
        self.nonreader_results: list[dict] = []
        self.nonreader_sent_frames = 0
        self.nonreader_sent_bytes = 0
        self.garbage_conns = 0
        self.garbage_closed = 0
        self.garbage_left_open = 0
        self.garbage_replied = 0
        self.garbage_reply_bytes = 0
        self.garbage_connect_failed = 0
        self.esc_frames = 0
        self.esc_echo_ok = 0
        self.esc_echo_bad = 0
        self.esc_lost = 0
        self.esc_bad_prefix_conns = 0
        self.esc_bad_prefix_closed = 0
        self.esc_bad_prefix_left_open = 0
        self.esc_bad_prefix_replied = 0
        self.pipe_sent = 0            # pipeliners: frames sent / echo bytes read back
        self.pipe_echo_bytes = 0
        self.pipe_closed_by_server = 0
        # harness health
        self.harness_errors = 0
        self.harness_error_examples: list[str] = []

    def lose(self, n: int, why: str) -> None:
        if n <= 0:
            return
        self.lost += n
        self.lost_why[why if why in self.lost_why else "other"] += n


def classify(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "timeout"
    if isinstance(e, asyncio.IncompleteReadError):
        return "eof"
    if isinstance(e, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "reset"
    return "other"


class Harness:
    def __init__(self, args, host: str, port: int, pid: int | None, server: SpawnedServer | None):
        self.args = args
        self.host = host
        self.port = port
        self.pid = pid
        self.server = server
        self.s = Stats()
        self.stop = asyncio.Event()
        self.rng = random.Random(args.seed)
        self.pool = TextPool(random.Random(args.seed))
        self.t0 = time.monotonic()
        self.rss_max = 0.0
        self.fds_max = 0
        self.server_gone = False
        self.hold_done = 0
        self.stop_reason = "duration"
        self.T = args.timeout
        self.tstop = threading.Event()  # the pipeliners' threads stop on it

    # -- helpers -------------------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def err(self, where: str, e: BaseException) -> None:
        self.s.harness_errors += 1
        if len(self.s.harness_error_examples) < 5:
            msg = f"{where}: {type(e).__name__}: {e}"
            self.s.harness_error_examples.append(msg)
            print(f"soak: harness error {msg}", file=sys.stderr, flush=True)

    async def guarded(self, where: str, coro) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            pass
        except Exception as e:  # noqa: BLE001 - nothing may leak out of a task
            self.err(where, e)

    async def connect(self, rcvbuf: int = 0):
        if rcvbuf:
            sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                sock.setblocking(False)
                await asyncio.wait_for(
                    asyncio.get_running_loop().sock_connect(sock, (self.host, self.port)), self.T)
                return await asyncio.wait_for(
                    asyncio.open_connection(sock=sock, limit=max(1024, rcvbuf)), self.T)
            except BaseException:
                sock.close()
                raise
        return await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.T)

    async def close(self, w: asyncio.StreamWriter, rst: bool = False) -> None:
        try:
            if rst:
                sock = w.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            w.close()
            await asyncio.wait_for(w.wait_closed(), self.T)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except Exception as e:  # noqa: BLE001
            self.err("close", e)

    async def pause(self, secs: float) -> None:
        """Sleep, but wake at once when the run stops."""
        try:
            await asyncio.wait_for(self.stop.wait(), secs)
        except TimeoutError:
            pass

    async def send(self, w: asyncio.StreamWriter, data: bytes) -> None:
        if w.is_closing():
            raise ConnectionResetError("transport closing")
        w.write(data)
        await asyncio.wait_for(w.drain(), self.T)

    async def read_echo(self, r: asyncio.StreamReader, sent: bytes) -> tuple[bool, str]:
        """Exact reads: 4 bytes, then n. Returns (ok, detail)."""
        pfx = await asyncio.wait_for(r.readexactly(PREFIX_LEN), self.T)
        if pfx != sent[:PREFIX_LEN]:
            if not pfx.isdigit():
                return False, f"prefix {pfx!r} is not 4 ASCII digits (sent {sent[:4]!r})"
            try:
                body = await asyncio.wait_for(r.readexactly(int(pfx)), self.T)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
                body = getattr(e, "partial", b"")
            return False, f"prefix {pfx!r} != sent {sent[:4]!r}; body starts {body[:24]!r}"
        body = await asyncio.wait_for(r.readexactly(len(sent) - PREFIX_LEN), self.T)
        if body != sent[PREFIX_LEN:]:
            i = next((k for k, (a, b) in enumerate(zip(body, sent[PREFIX_LEN:])) if a != b), 0)
            return False, f"body differs at byte {i}: got {body[i:i + 16]!r} want {sent[PREFIX_LEN + i:PREFIX_LEN + i + 16]!r}"
        return True, ""

    def corrupt(self, detail: str) -> None:
        self.s.corrupted += 1
        if len(self.s.corrupt_examples) < 5:
            self.s.corrupt_examples.append(detail)

    # -- well-behaved clients ------------------------------------------------------------------

    def conn_budget_left(self) -> bool:
        return not self.args.total_conns or self.s.connections < self.args.total_conns

    async def good_client(self, idx: int) -> None:
        a = self.args
        rng = random.Random((a.seed or 0) * 1000003 + idx)
        conn_no = 0
        while not self.stop.is_set() and self.conn_budget_left():
            conn_no += 1
            try:
                r, w = await self.connect()
            except (OSError, TimeoutError):
                self.s.connect_failed += 1
                self.s.attempted += a.frames
                self.s.lose(a.frames, "connect")
                await self.pause(a.fail_backoff)
                continue
            self.s.connections += 1
            if a.total_conns and self.s.connections >= a.total_conns:
                self.finish(f"total-conns {a.total_conns} reached")
            ok_all = True
            done = 0
            try:
                for seq in range(a.frames):
                    if self.stop.is_set() and seq > 0:
                        break
                    data = frame(make_body(self.pool, rng, pick_len(rng, a), f"c{idx}:{conn_no}:{seq}|"))
                    self.s.attempted += 1
                    done += 1
                    try:
                        await self.send(w, data)
                        ok, detail = await self.read_echo(r, data)
                    except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
                        self.s.lose(1, classify(e))
                        # the rest of this connection's frames can no longer be sent: lost too
                        rest = 0 if self.stop.is_set() else a.frames - done
                        self.s.attempted += rest
                        self.s.lose(rest, classify(e))
                        ok_all = False
                        break
                    if ok:
                        self.s.verified += 1
                        self.s.bytes_echoed += len(data)
                    else:
                        self.corrupt(f"client {idx} conn {conn_no} frame {seq}: {detail}")
                        rest = 0 if self.stop.is_set() else a.frames - done
                        self.s.attempted += rest
                        self.s.lose(rest, "after_corrupt")
                        ok_all = False
                        break
            finally:
                await self.close(w, rst=a.rst_close)
            if ok_all:
                self.s.conn_ok += 1
            else:
                await self.pause(a.fail_backoff)

    async def hold_client(self, idx: int) -> None:
        """One connection, frames until the run stops or --one-conn-frames are verified."""
        a = self.args
        rng = random.Random((a.seed or 0) * 1000003 + idx)
        target = a.one_conn_frames
        sent_total = 0
        conn_no = 0
        try:
            while not self.stop.is_set() and (not target or sent_total < target):
                conn_no += 1
                try:
                    r, w = await self.connect()
                except (OSError, TimeoutError):
                    self.s.connect_failed += 1
                    self.s.attempted += 1
                    self.s.lose(1, "connect")
                    await self.pause(a.fail_backoff)
                    continue
                self.s.connections += 1
                failed = False
                try:
                    while not self.stop.is_set() and (not target or sent_total < target):
                        data = frame(make_body(self.pool, rng, pick_len(rng, a), f"h{idx}:{conn_no}:{sent_total}|"))
                        self.s.attempted += 1
                        sent_total += 1
                        try:
                            await self.send(w, data)
                            ok, detail = await self.read_echo(r, data)
                        except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
                            self.s.lose(1, classify(e))
                            failed = True
                            break
                        if ok:
                            self.s.verified += 1
                            self.s.bytes_echoed += len(data)
                        else:
                            self.corrupt(f"hold client {idx} conn {conn_no} frame {sent_total - 1}: {detail}")
                            failed = True
                            break
                    else:
                        self.s.conn_ok += 1  # the loop ended without a lost or corrupted echo
                finally:
                    await self.close(w, rst=a.rst_close)
                if failed:
                    await self.pause(a.fail_backoff)
        finally:
            self.hold_done += 1
            if target and self.hold_done >= a.clients:
                self.finish(f"{target} frames per held connection done")

    # -- hostile peers -------------------------------------------------------------------------

    async def idle_holder(self, idx: int) -> None:
        while not self.stop.is_set():
            try:
                r, w = await self.connect()
            except (OSError, TimeoutError):
                self.s.idle_connect_failed += 1
                await self.pause(1.0)
                continue
            self.s.idle_connects += 1
            self.s.idle_open += 1
            self.s.idle_peak = max(self.s.idle_peak, self.s.idle_open)
            t = time.monotonic()
            closed = False
            try:
                while not self.stop.is_set():
                    try:
                        got = await asyncio.wait_for(r.read(4096), 1.0)
                    except TimeoutError:
                        continue
                    if not got:
                        closed = True
                        break
            except OSError:
                closed = True
            finally:
                self.s.idle_open -= 1
                held = time.monotonic() - t
                self.s.idle_longest_open = max(self.s.idle_longest_open, held)
                await self.close(w)
            if closed:
                if held < 1.0:
                    self.s.idle_rejected += 1
                else:
                    self.s.idle_closed_later += 1
                await self.pause(1.0)

    async def trickler(self, idx: int) -> None:
        a = self.args
        n = 0
        while not self.stop.is_set():
            try:
                r, w = await self.connect()
            except (OSError, TimeoutError):
                await self.pause(1.0)
                continue
            self.s.trick_connects += 1
            self.s.trick_open += 1
            t = time.monotonic()
            try:
                while not self.stop.is_set():
                    n += 1
                    data = frame(f"trickle {idx}:{n} 느린 손님".encode(CHARSET))
                    for i in range(len(data)):
                        if self.stop.is_set():
                            break
                        if r.at_eof() or w.is_closing():
                            raise ConnectionResetError("closed by the server")
                        await self.send(w, data[i:i + 1])
                        self.s.trick_bytes += 1
                        if i + 1 < len(data):
                            await self.pause(a.trickle_interval)
                    else:
                        self.s.trick_frames_done += 1
                        ok, _ = await self.read_echo(r, data)
                        if ok:
                            self.s.trick_echo_ok += 1
                        else:
                            self.s.trick_echo_bad += 1
                            break
                        continue
                    break
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                self.s.trick_closed_by_server += 1
            finally:
                self.s.trick_open -= 1
                self.s.trick_longest_open = max(self.s.trick_longest_open, time.monotonic() - t)
                await self.close(w)
            await self.pause(1.0)

    async def nonreader(self, idx: int) -> None:
        """Sends frames and never reads (so the server's writes block); at the end reads what
        arrived and checks it is whole frames, in order, then EOF/reset (or silence)."""
        a = self.args
        rng = random.Random((a.seed or 0) * 7919 + idx)
        res = {"id": idx, "connected": False, "sent_frames": 0, "sent_bytes": 0,
               "closed_while_sending": None, "echo_bytes": 0, "echo_frames": 0,
               "status": "no-data", "end": None, "detail": ""}
        self.s.nonreader_results.append(res)
        try:
            r, w = await self.connect(rcvbuf=a.nonreader_rcvbuf)
        except (OSError, TimeoutError) as e:
            res["status"] = "connect-failed"
            res["detail"] = f"{type(e).__name__}: {e}"
            return
        res["connected"] = True
        # A duplicate of the descriptor, taken now: asyncio closes its own on a reset, and its
        # StreamReader would raise the reset before handing over bytes it already holds.
        sock = w.get_extra_info("socket")
        raw = socket.socket(fileno=os.dup(sock.fileno())) if sock is not None else None
        sent: list[bytes] = []
        try:
            seq = 0
            while not self.stop.is_set() and res["sent_bytes"] < a.nonreader_max_bytes:
                if r.at_eof() or w.is_closing():
                    res["closed_while_sending"] = "eof"
                    break
                n = a.frame_size if a.frame_size is not None else rng.choice([9999, 9999, rng.randint(1, 9999)])
                data = frame(make_body(self.pool, rng, n, f"n{idx}:{seq}|"))
                seq += 1
                w.write(data)
                sent.append(data)
                res["sent_frames"] += 1
                res["sent_bytes"] += len(data)
                self.s.nonreader_sent_frames += 1
                self.s.nonreader_sent_bytes += len(data)
                while not self.stop.is_set():
                    try:
                        await asyncio.wait_for(w.drain(), 1.0)
                        break
                    except TimeoutError:
                        continue
        except (OSError, asyncio.IncompleteReadError) as e:
            res["closed_while_sending"] = classify(e)
        # The run is over: now read everything that arrived. asyncio's StreamReader raises a
        # stored reset before handing over bytes it already holds, which would hide a cut frame,
        # so take its buffer and then read the socket itself (a duplicate of its descriptor).
        await self.until_stopped()
        transport = w.transport
        try:
            transport.pause_reading()
        except (AttributeError, RuntimeError):
            pass
        data = bytearray(getattr(r, "_buffer", b""))
        end = "eof"
        if raw is not None:
            data_more, end = await asyncio.to_thread(self.drain_raw, raw, a.drain_timeout, a.drain_quiet)
            data += data_more
        await self.close(w)
        res["end"] = end
        res["echo_bytes"] = len(data)
        self.check_stream(bytes(data), sent, res)

    @staticmethod
    def drain_raw(raw: "socket.socket", total: float, quiet: float) -> tuple[bytes, str]:
        """Reads a plain socket until EOF, reset, silence or the deadline; bytes and how it ended."""
        data = bytearray()
        deadline = time.monotonic() + total
        end = "drain-timeout"
        try:
            raw.setblocking(True)
            while time.monotonic() < deadline:
                raw.settimeout(max(0.01, min(quiet, deadline - time.monotonic())))
                try:
                    chunk = raw.recv(1 << 16)
                except TimeoutError:
                    end = "quiet (connection still open)"
                    break
                except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
                    end = "reset"
                    break
                except OSError as e:
                    end = f"error {e.errno}"
                    break
                if not chunk:
                    # Linux reports a reset after buffered bytes as EOF, leaving the error behind.
                    err = raw.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    end = "reset" if err == errno.ECONNRESET else "eof"
                    break
                data += chunk
        finally:
            raw.close()
        return bytes(data), end

    @staticmethod
    def check_stream(data: bytes, sent: list[bytes], res: dict) -> None:
        index = {f: i for i, f in enumerate(sent)}
        pos = 0
        want = 0
        status = "whole"
        gaps = 0
        mismatches = 0
        frames = 0
        detail = ""
        while pos < len(data):
            if len(data) - pos < PREFIX_LEN:
                status = "truncated-tail" if status == "whole" else status
                detail = detail or f"{len(data) - pos} stray bytes at the end"
                break
            pfx = data[pos:pos + PREFIX_LEN]
            if not pfx.isdigit():
                status = "desync"
                detail = (f"after {frames} frames ({pos} bytes): prefix {pfx!r} is not 4 ASCII digits; "
                          f"next bytes {data[pos:pos + 24]!r}")
                break
            n = int(pfx)
            if pos + PREFIX_LEN + n > len(data):
                status = "truncated-tail" if status == "whole" else status
                detail = detail or (f"last frame cut: {len(data) - pos - PREFIX_LEN} of {n} body bytes "
                                    f"after {frames} whole frames")
                break
            f = data[pos:pos + PREFIX_LEN + n]
            j = index.get(f)
            if j is None:
                mismatches += 1
                if status in ("whole", "truncated-tail", "gap"):
                    status = "mismatch"
                    detail = f"frame {frames} ({pos} bytes in) is not any frame that was sent: {f[:28]!r}"
            elif j != want:
                gaps += 1
                if status == "whole":
                    status = "gap"
                    detail = f"echo {frames} is sent frame {j}, expected {want}: {j - want} frame(s) skipped"
                want = j + 1
            else:
                want += 1
            frames += 1
            pos += PREFIX_LEN + n
        res["echo_frames"] = frames
        res["gaps"] = gaps
        res["mismatches"] = mismatches
        if not data:
            status = "no-data"
        res["status"] = status
        res["detail"] = detail

    async def garbage(self, idx: int) -> None:
        rng = random.Random((self.args.seed or 0) * 104729 + idx)
        while not self.stop.is_set():
            kind = rng.randrange(len(GARBAGE_FIXED) + 2)
            truncated = False
            if kind < len(GARBAGE_FIXED):
                payload = GARBAGE_FIXED[kind]
            elif kind == len(GARBAGE_FIXED):
                first = rng.choice([b for b in range(256) if not (0x30 <= b <= 0x39)])
                payload = bytes([first]) + rng.randbytes(rng.randint(3, 2000))
            else:
                payload = b"0100" + b"cut short"  # a truncated frame, then EOF
                truncated = True
            await self.hostile_once(payload, truncated, "garbage")
            await self.pause(self.args.hostile_pause)

    async def hostile_once(self, payload: bytes, half_close: bool, who: str) -> None:
        """Send one bad payload and expect the server to close without replying."""
        s = self.s
        try:
            r, w = await self.connect()
        except (OSError, TimeoutError):
            if who == "garbage":
                s.garbage_connect_failed += 1
            return
        outcome = "closed"
        got_bytes = 0
        try:
            await self.send(w, payload)
            if half_close:
                w.write_eof()
            while True:
                got = await asyncio.wait_for(r.read(65536), self.args.hostile_wait)
                if not got:
                    break
                got_bytes += len(got)
        except TimeoutError:
            outcome = "left-open"
        except (OSError, asyncio.IncompleteReadError):
            outcome = "closed"
        finally:
            await self.close(w)
        if got_bytes:
            outcome = "replied"
        if who == "garbage":
            s.garbage_conns += 1
            if outcome == "replied":
                s.garbage_replied += 1
                s.garbage_reply_bytes += got_bytes
            elif outcome == "left-open":
                s.garbage_left_open += 1
            else:
                s.garbage_closed += 1
        else:
            s.esc_bad_prefix_conns += 1
            if outcome == "replied":
                s.esc_bad_prefix_replied += 1
            elif outcome == "left-open":
                s.esc_bad_prefix_left_open += 1
            else:
                s.esc_bad_prefix_closed += 1

    async def escaper(self, idx: int) -> None:
        rng = random.Random((self.args.seed or 0) * 15485863 + idx)
        n = 0
        while not self.stop.is_set():
            n += 1
            if n % 3 == 0:
                await self.hostile_once(rng.choice(ESCAPE_BAD_PREFIXES) + b"PWNED\x07", False, "escape")
                await self.pause(self.args.hostile_pause)
                continue
            try:
                r, w = await self.connect()
            except (OSError, TimeoutError):
                await self.pause(1.0)
                continue
            try:
                for k in range(3):
                    parts = [f"e{idx}:{n}:{k}|".encode()]
                    for _ in range(rng.randint(1, 4)):
                        if rng.random() < 0.15:
                            parts.append(rng.choice(ESCAPE_RAW))
                        else:
                            parts.append(rng.choice(ESCAPE_PIECES).encode(CHARSET))
                    data = frame(b"".join(parts)[:MAX_BODY])
                    self.s.esc_frames += 1
                    try:
                        await self.send(w, data)
                        ok, _ = await self.read_echo(r, data)
                    except (OSError, TimeoutError, asyncio.IncompleteReadError):
                        self.s.esc_lost += 1
                        break
                    if ok:
                        self.s.esc_echo_ok += 1
                    else:
                        self.s.esc_echo_bad += 1
                        break
            finally:
                await self.close(w)
            await self.pause(self.args.hostile_pause)

    # -- pipeliners (threads: as fast as a peer can write, no event loop in the way) -----------

    PIPE_FRAME = b"0001x"

    def pipeliner(self, idx: int) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.T)
        except OSError as e:
            self.err(f"pipeliner {idx}", e)
            return
        sock.settimeout(0.5)
        chunk = self.PIPE_FRAME * 13107  # 64 KB of frames per send

        def reader() -> None:
            while not self.tstop.is_set():
                try:
                    data = sock.recv(1 << 20)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    self.s.pipe_closed_by_server += 1
                    break
                self.s.pipe_echo_bytes += len(data)

        t = threading.Thread(target=reader, name=f"pipeliner-{idx}-read", daemon=True)
        t.start()
        view = memoryview(chunk)
        while not self.tstop.is_set():
            try:
                n = sock.send(view)
            except TimeoutError:
                continue
            except OSError:
                break
            # Count whole frames; the rest of the chunk goes on the next round.
            self.s.pipe_sent += n // len(self.PIPE_FRAME)
            if n % len(self.PIPE_FRAME):
                rest = len(self.PIPE_FRAME) - n % len(self.PIPE_FRAME)
                try:
                    sock.sendall(self.PIPE_FRAME[-rest:])
                except OSError:
                    break
                self.s.pipe_sent += 1
        t.join(timeout=self.T)
        try:
            sock.close()
        except OSError:
            pass

    # -- monitoring ----------------------------------------------------------------------------

    def sample(self) -> tuple[float | None, int | None]:
        rss, fds = proc_rss_mb(self.pid), proc_fds(self.pid)
        if rss is not None:
            self.rss_max = max(self.rss_max, rss)
        if fds is not None:
            self.fds_max = max(self.fds_max, fds)
        return rss, fds

    def server_dead(self) -> bool:
        if self.server is not None:
            return not self.server.alive()
        return self.pid is not None and not pid_alive(self.pid)

    def status_line(self, tag: str = "") -> str:
        s, a = self.s, self.args
        rss, fds = self.sample()
        el = self.elapsed()
        rate = s.connections / el if el > 0 else 0.0
        parts = [
            f"[{el:8.1f}s]{tag}",
            f"conns={s.connections} ({rate:.0f}/s)",
            f"echoes ok={s.verified} lost={s.lost} corrupt={s.corrupted}",
            f"rss={fmt_mb(rss)} fds={fmt_int(fds)}",
        ]
        if a.idle:
            parts.append(f"idle open={s.idle_open}/{a.idle} rejected={s.idle_rejected}")
        if a.tricklers:
            parts.append(f"trickle open={s.trick_open} frames={s.trick_frames_done}")
        if a.nonreaders:
            parts.append(f"nonread sent={s.nonreader_sent_bytes / 1e6:.1f}MB")
        if a.garbage:
            parts.append(f"garbage conns={s.garbage_conns} open={s.garbage_left_open} replied={s.garbage_replied}")
        if a.escapes:
            parts.append(f"esc ok={s.esc_echo_ok} bad={s.esc_echo_bad}")
        if a.pipeliners:
            parts.append(f"pipelined sent={s.pipe_sent} echoed={s.pipe_echo_bytes // len(self.PIPE_FRAME)} "
                         f"hwm={fmt_mb(proc_hwm_mb(self.pid))}")
        if s.harness_errors:
            parts.append(f"harness_errors={s.harness_errors}")
        return " | ".join(parts)

    async def monitor(self) -> None:
        a = self.args
        next_line = a.interval
        while not self.stop.is_set():
            await self.pause(1.0)
            if self.stop.is_set():
                break
            self.sample()
            if self.server_dead():
                self.server_gone = True
                self.finish("server process exited")
                break
            el = self.elapsed()
            if a.duration and el >= a.duration:
                self.finish("duration")
                break
            if el >= next_line:
                say(self.status_line())
                next_line += a.interval

    async def run(self) -> dict:
        a = self.args
        rss0, fds0 = self.sample()
        self.cpu0 = proc_cpu_s(self.pid)
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.self_cpu0 = ru.ru_utime + ru.ru_stime
        say(
            f"soak: start host={self.host} port={self.port} pid={self.pid or 'n/a'} "
            f"rss={fmt_mb(rss0)} fds={fmt_int(fds0)} duration={a.duration or 'unlimited'}s "
            f"clients={a.clients} frames/conn={a.frames if not a.hold_conn else 'hold'} "
            f"idle={a.idle} tricklers={a.tricklers} nonreaders={a.nonreaders} garbage={a.garbage} "
            f"escapes={a.escapes} pipeliners={a.pipeliners} timeout={self.T}s fd-limit={resource.getrlimit(resource.RLIMIT_NOFILE)[0]}"
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.on_signal)
            except (NotImplementedError, RuntimeError):
                pass
        hostile = []
        for i in range(a.idle):
            hostile.append(asyncio.create_task(self.guarded("idle", self.idle_holder(i))))
        for i in range(a.tricklers):
            hostile.append(asyncio.create_task(self.guarded("trickler", self.trickler(i))))
        for i in range(a.nonreaders):
            hostile.append(asyncio.create_task(self.guarded("nonreader", self.nonreader(i))))
        for i in range(a.garbage):
            hostile.append(asyncio.create_task(self.guarded("garbage", self.garbage(i))))
        for i in range(a.escapes):
            hostile.append(asyncio.create_task(self.guarded("escapes", self.escaper(i))))
        pipes = [threading.Thread(target=self.pipeliner, args=(i,), name=f"pipeliner-{i}", daemon=True)
                 for i in range(a.pipeliners)]
        for t in pipes:
            t.start()
        mon = asyncio.create_task(self.guarded("monitor", self.monitor()))
        warmup = a.warmup if a.warmup is not None else (1.0 if hostile else 0.0)
        if warmup:
            await self.pause(warmup)
        good = []
        for i in range(a.clients):
            body = self.hold_client(i) if a.hold_conn else self.good_client(i)
            good.append(asyncio.create_task(self.guarded("client", body)))
        if not good and not hostile:
            self.finish("nothing to run")
        await self.until_stopped()
        self.tstop.set()
        t_stop = self.elapsed()
        rss_stop, fds_stop = self.sample()
        self.hwm_stop = proc_hwm_mb(self.pid)
        cpu1 = proc_cpu_s(self.pid)
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu_run = None if cpu1 is None or self.cpu0 is None else cpu1 - self.cpu0
        self.self_cpu_run = ru.ru_utime + ru.ru_stime - self.self_cpu0
        say(self.status_line(" stop"))
        # Wind down: clients finish the frame in hand, non-readers drain, everything closes.
        grace = self.T * 2 + 5
        await wait_all(good, grace)
        await wait_all(hostile, grace + a.drain_timeout)
        await wait_all([mon], 5)
        for t in pipes:
            await asyncio.to_thread(t.join, self.T * 2)
        if a.settle:
            await asyncio.sleep(a.settle)
        rss_end, fds_end = self.sample()
        return self.summary(rss0, fds0, rss_stop, fds_stop, rss_end, fds_end, t_stop)

    def on_signal(self) -> None:
        self.finish("signal")

    def finish(self, reason: str) -> None:
        self.tstop.set()
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stop.set()

    async def until_stopped(self) -> None:
        while not self.stop.is_set():
            await self.pause(1.0)

    def summary(self, rss0, fds0, rss_stop, fds_stop, rss_end, fds_end, t_stop) -> dict:
        s, a = self.s, self.args
        ratio = (s.verified / s.attempted) if s.attempted else None
        nr = s.nonreader_results
        out = {
            "stop_reason": self.stop_reason,
            "elapsed_s": round(t_stop, 2),
            "server": {"host": self.host, "port": self.port, "pid": self.pid,
                       "gone": self.server_gone,
                       "rss_start_mb": rnd(rss0), "rss_at_stop_mb": rnd(rss_stop), "rss_end_mb": rnd(rss_end),
                       "rss_max_mb": rnd(self.rss_max) if self.pid else None,
                       # the kernel's own peak (VmHWM), between the 1 s samples too
                       "rss_peak_mb": rnd(self.hwm_stop),
                       "fds_start": fds0, "fds_at_stop": fds_stop, "fds_end": fds_end,
                       "fds_max": self.fds_max if self.pid else None,
                       "cpu_s": rnd2(self.cpu_run),
                       "cpu_pct_of_one_core": rnd(100 * self.cpu_run / t_stop) if self.cpu_run is not None and t_stop > 0 else None},
            "harness_cpu_pct_of_one_core": rnd(100 * self.self_cpu_run / t_stop) if t_stop > 0 else None,
            "clients": {"mode": "hold-conn" if a.hold_conn else "loop", "tasks": a.clients,
                        "connections": s.connections,
                        "connections_per_s": round(s.connections / t_stop, 1) if t_stop > 0 else None,
                        "connect_failed": s.connect_failed, "connections_all_ok": s.conn_ok,
                        "frames_attempted": s.attempted, "echoes_verified": s.verified,
                        "echoes_lost": s.lost, "lost_why": s.lost_why,
                        "echoes_corrupted": s.corrupted,
                        "success_ratio": round(ratio, 6) if ratio is not None else None,
                        "echo_mb": round(s.bytes_echoed / 1e6, 2),
                        "echoes_per_s": round(s.verified / t_stop, 1) if t_stop > 0 else None,
                        "corrupt_examples": s.corrupt_examples},
        }
        if a.idle:
            out["idle"] = {"holders": a.idle, "connects": s.idle_connects, "peak_open": s.idle_peak,
                           "open_at_end": s.idle_open, "rejected_within_1s": s.idle_rejected,
                           "closed_later": s.idle_closed_later, "connect_failed": s.idle_connect_failed,
                           "longest_open_s": round(s.idle_longest_open, 1)}
        if a.tricklers:
            out["tricklers"] = {"count": a.tricklers, "connects": s.trick_connects, "bytes": s.trick_bytes,
                                "frames_completed": s.trick_frames_done, "echo_ok": s.trick_echo_ok,
                                "echo_bad": s.trick_echo_bad, "closed_by_server": s.trick_closed_by_server,
                                "longest_open_s": round(s.trick_longest_open, 1)}
        if a.nonreaders:
            out["nonreaders"] = {"count": a.nonreaders,
                                 "desync": sum(1 for x in nr if x["status"] == "desync"),
                                 "mismatch": sum(1 for x in nr if x["status"] == "mismatch"),
                                 "gap": sum(1 for x in nr if x["status"] == "gap"),
                                 "whole_or_truncated_tail": sum(1 for x in nr if x["status"] in ("whole", "truncated-tail")),
                                 "results": nr}
        if a.garbage:
            out["garbage"] = {"count": a.garbage, "conns": s.garbage_conns, "closed_by_server": s.garbage_closed,
                              "left_open": s.garbage_left_open, "replied": s.garbage_replied,
                              "reply_bytes": s.garbage_reply_bytes, "connect_failed": s.garbage_connect_failed}
        if a.escapes:
            out["escapes"] = {"count": a.escapes, "frames": s.esc_frames, "echo_ok": s.esc_echo_ok,
                              "echo_bad": s.esc_echo_bad, "lost": s.esc_lost,
                              "bad_prefix_conns": s.esc_bad_prefix_conns,
                              "bad_prefix_closed": s.esc_bad_prefix_closed,
                              "bad_prefix_left_open": s.esc_bad_prefix_left_open,
                              "bad_prefix_replied": s.esc_bad_prefix_replied}
        if a.pipeliners:
            echoed = s.pipe_echo_bytes // len(self.PIPE_FRAME)
            out["pipeliners"] = {"count": a.pipeliners, "frames_sent": s.pipe_sent, "frames_echoed": echoed,
                                 "frames_per_s": round(echoed / t_stop) if t_stop > 0 else None,
                                 "closed_by_server": s.pipe_closed_by_server}
        if self.server is not None:
            out["server_stdout"] = {"bytes": self.server.out_bytes, "lines": self.server.out_lines,
                                    "raw_esc_bytes": self.server.esc_bytes,
                                    "raw_other_control_bytes": self.server.ctl_bytes,
                                    "log": a.server_log}
        out["harness_errors"] = s.harness_errors
        out["harness_error_examples"] = s.harness_error_examples
        out["exit_status"] = 0 if s.corrupted == 0 else 1
        return out


async def wait_all(tasks: list, timeout: float) -> None:
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)


_stdout_ok = True


def say(*parts) -> None:
    """print() to stdout, flushed; a closed stdout (e.g. `| head`) silences the rest instead of
    raising out of the run."""
    global _stdout_ok
    if not _stdout_ok:
        return
    try:
        print(*parts, flush=True)
    except (BrokenPipeError, OSError):
        _stdout_ok = False
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except OSError:
            pass


def rnd(x):
    return None if x is None else round(x, 1)


def rnd2(x):
    return None if x is None else round(x, 2)


def fmt_mb(x) -> str:
    return "n/a" if x is None else f"{x:.1f}MB"


def fmt_int(x) -> str:
    return "n/a" if x is None else str(x)


def print_summary(out: dict) -> None:
    sv, c = out["server"], out["clients"]
    say("soak: summary")
    say(f"  stopped: {out['stop_reason']} after {out['elapsed_s']}s; server pid {sv['pid'] or 'n/a'} "
          f"{'EXITED' if sv['gone'] else ('alive' if sv['pid'] else '(not watched)')}")
    say(f"  server RSS start {fmt_mb(sv['rss_start_mb'])} -> at stop {fmt_mb(sv['rss_at_stop_mb'])} "
          f"-> end {fmt_mb(sv['rss_end_mb'])} (max {fmt_mb(sv['rss_max_mb'])}, peak VmHWM "
          f"{fmt_mb(sv['rss_peak_mb'])}); fds start "
          f"{fmt_int(sv['fds_start'])} -> at stop {fmt_int(sv['fds_at_stop'])} -> end {fmt_int(sv['fds_end'])} "
          f"(max {fmt_int(sv['fds_max'])})")
    cpu = sv["cpu_pct_of_one_core"]
    say(f"  CPU during the run: server {'n/a' if cpu is None else f'{cpu}%'} of one core, harness "
          f"{out['harness_cpu_pct_of_one_core']}% of one core")
    ratio = c["success_ratio"]
    say(f"  well-behaved ({c['mode']}, {c['tasks']} tasks): {c['connections']} connections "
          f"({c['connections_per_s']}/s, {c['connect_failed']} connect failures, {c['connections_all_ok']} fully ok); "
          f"frames attempted {c['frames_attempted']}, verified {c['echoes_verified']}, lost {c['echoes_lost']} "
          f"{c['lost_why']}, corrupted {c['echoes_corrupted']}; success ratio "
          f"{'n/a' if ratio is None else f'{ratio:.4f}'}; {c['echo_mb']} MB echoed, {c['echoes_per_s']} echoes/s")
    for ex in c["corrupt_examples"]:
        say(f"    corrupt: {ex}")
    for key in ("idle", "tricklers", "garbage", "escapes", "pipeliners", "server_stdout"):
        if key in out:
            say(f"  {key}: " + ", ".join(f"{k}={v}" for k, v in out[key].items()))
    if "nonreaders" in out:
        n = out["nonreaders"]
        say(f"  nonreaders: {n['count']}: desync={n['desync']} mismatch={n['mismatch']} gap={n['gap']} "
              f"clean={n['whole_or_truncated_tail']}")
        for r in n["results"]:
            say(f"    #{r['id']}: sent {r['sent_frames']} frames / {r['sent_bytes']} B, got back "
                  f"{r['echo_frames']} frames / {r['echo_bytes']} B, end={r['end']}, status={r['status']} "
                  f"(frames not matching any sent: {r.get('mismatches', 0)}, skips: {r.get('gaps', 0)})"
                  f"{'; ' + r['detail'] if r['detail'] else ''}")
    if out["harness_errors"]:
        say(f"  harness errors: {out['harness_errors']} {out['harness_error_examples']}")
    say(f"  exit status {out['exit_status']} ({'no' if out['exit_status'] == 0 else 'SOME'} corrupted echoes "
          f"for well-behaved clients)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="soak.py", description=DESCRIPTION, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("server (attach or spawn)")
    g.add_argument("--port", type=int, help="attach: port of a running server")
    g.add_argument("--pid", type=int, help="attach: the server's pid, for RSS/fd readings "
                   "(default: looked up from the listening socket in /proc)")
    g.add_argument("--host", default="127.0.0.1", help="server address to connect to (default 127.0.0.1)")
    g.add_argument("--spawn", metavar="CMD", help='spawn the server, e.g. "/tmp/tcp-lab-baseline server '
                   '--port 0 --format text"; the port is read from its first stdout lines, then its stdout '
                   "is drained (to --server-log or nowhere) and it gets SIGTERM at the end")
    g.add_argument("--server-log", metavar="FILE", help="with --spawn: write the server's stdout here "
                   "(default: discarded); raw ESC/control bytes in it are counted either way")
    g = p.add_argument_group("run")
    g.add_argument("--duration", type=float, default=60.0, help="seconds to run (0 = until --total-conns, "
                   "--one-conn-frames or Ctrl-C; default 60)")
    g.add_argument("--interval", type=float, default=10.0, help="seconds between status lines (default 10)")
    g.add_argument("--timeout", type=float, default=10.0, help="bound on every connect/read/write (default 10 s)")
    g.add_argument("--settle", type=float, default=2.0, help="seconds to wait after closing everything "
                   "before the final RSS/fd reading (default 2)")
    g.add_argument("--warmup", type=float, default=None, help="seconds the hostile peers get before the "
                   "well-behaved clients start (default 1 when there are hostile peers, else 0)")
    g.add_argument("--seed", type=int, default=None, help="random seed, for repeatable bodies")
    g.add_argument("--json", action="store_true", help="print the summary as one JSON line (last stdout line)")
    g = p.add_argument_group("well-behaved clients")
    g.add_argument("--clients", type=int, default=4, help="client tasks (default 4)")
    g.add_argument("--frames", type=int, default=10, help="frames per connection (default 10)")
    g.add_argument("--big-frames", action="store_true", help="about 20%% of frames 9000-9999 bytes "
                   "(half of those exactly 9999)")
    g.add_argument("--frame-size", type=int, default=None, help="every frame body exactly this many bytes (0-9999)")
    g.add_argument("--hold-conn", action="store_true", help="each client keeps ONE connection and sends "
                   "frames until the run ends (reconnects only if the server drops it)")
    g.add_argument("--one-conn-frames", type=int, default=0, metavar="N", help="implies --hold-conn: each "
                   "client sends N frames on its connection, then the run ends")
    g.add_argument("--total-conns", type=int, default=0, metavar="N", help="end the run after N client "
                   "connections (0 = no limit)")
    g.add_argument("--rst-close", action="store_true", help="close client connections with RST "
                   "(SO_LINGER 0) instead of FIN, so no TIME_WAIT piles up on the client side")
    g.add_argument("--fail-backoff", type=float, default=0.1, help="pause after a failed connection (default 0.1 s)")
    g = p.add_argument_group("hostile peers (each a count of tasks)")
    g.add_argument("--idle", type=int, default=0, help="connect and hold silently; reconnect 1 s after the server closes")
    g.add_argument("--tricklers", type=int, default=0, help="send a frame one byte every --trickle-interval s")
    g.add_argument("--trickle-interval", type=float, default=2.0, help="seconds between trickled bytes (default 2)")
    g.add_argument("--nonreaders", type=int, default=0, help="send frames and never read (the server's writes "
                   "block); at the end read what came back and check it is whole frames in order, then EOF/reset; "
                   "'desync' = a prefix that is not 4 ASCII digits")
    g.add_argument("--nonreader-rcvbuf", type=int, default=0, help="SO_RCVBUF for non-readers (0 = kernel default)")
    g.add_argument("--nonreader-max-bytes", type=int, default=64 << 20, help="stop sending after this many bytes "
                   "per non-reader (default 64 MiB)")
    g.add_argument("--drain-timeout", type=float, default=30.0, help="non-readers: most seconds spent reading "
                   "at the end (default 30)")
    g.add_argument("--drain-quiet", type=float, default=3.0, help="non-readers: stop reading after this "
                   "many seconds without data (default 3)")
    g.add_argument("--garbage", type=int, default=0, help="send non-digit prefixes / random bytes / truncated "
                   "frames; expect the server to close without replying")
    g.add_argument("--escapes", type=int, default=0, help="send well-formed frames whose bodies hold terminal "
                   'escapes ("\\x1b]2;PWNED\\x07", "\\x1b[2J", CR/LF, OSC 52 ...), verified byte-exact, and '
                   'bad prefixes like "\\x1b]2;"')
    g.add_argument("--hostile-pause", type=float, default=0.5, help="pause between garbage/escape connections (default 0.5 s)")
    g.add_argument("--hostile-wait", type=float, default=5.0, help="how long a garbage/bad-prefix peer waits "
                   "for the server to close before counting it 'left open' (default 5 s)")
    g.add_argument("--pipeliners", type=int, default=0, help="send `0001x` frames back to back on one "
                   "connection each (a thread), reading the echoes in another thread")
    g.add_argument("--stdout-unread", action="store_true", help="with --spawn: nobody reads the server's "
                   "stdout after its port line (as `tcp-lab server | sleep 60`): what it reports must not queue")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.one_conn_frames:
        args.hold_conn = True
    if args.frame_size is not None and not 0 <= args.frame_size <= MAX_BODY:
        print("soak: --frame-size must be 0..9999", file=sys.stderr)
        return 2
    if args.spawn and args.port:
        print("soak: give either --spawn or --port, not both", file=sys.stderr)
        return 2
    if not args.spawn and not args.port:
        print("soak: give --port P [--pid PID] to attach, or --spawn CMD", file=sys.stderr)
        return 2
    if args.frames < 1:
        args.frames = 1
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # our counters say what went wrong
    raise_fd_limit()

    server = None
    if args.spawn:
        server = SpawnedServer(args.spawn, args.server_log, unread=args.stdout_unread)
        try:
            server.start()
        except (OSError, RuntimeError) as e:
            print(f"soak: cannot start the server: {e}", file=sys.stderr)
            return 2
        port, pid = server.port, server.pid
    else:
        port = args.port
        pid = args.pid or find_listener_pid(port)
        if pid is None:
            print(f"soak: no pid for port {port} (pass --pid); RSS/fds will read n/a", file=sys.stderr)

    code = 2
    try:
        h = Harness(args, args.host, port, pid, server)
        out = asyncio.run(h.run())
        if server is not None:
            out["server"]["exit_code"] = server.stop()
            out["server_stdout"]["raw_esc_bytes"] = server.esc_bytes
            out["server_stdout"]["raw_other_control_bytes"] = server.ctl_bytes
            out["server_stdout"]["bytes"] = server.out_bytes
            out["server_stdout"]["lines"] = server.out_lines
            server = None
        if args.json:
            say(json.dumps(out, ensure_ascii=False))
        else:
            print_summary(out)
        code = out["exit_status"]
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        code = 2
    except Exception as e:  # noqa: BLE001 - report, stop the server, exit 2
        print(f"soak: harness failed: {type(e).__name__}: {e}", file=sys.stderr)
        code = 2
    finally:
        if server is not None:
            server.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
