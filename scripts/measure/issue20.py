#!/usr/bin/env python3
"""Before/after measurements for issue 20 (findings 2-5): two `tcp-lab watch` binaries side by side,
in the same run, against the kernel's own record.

Run as root (network namespaces, bpftrace, iptables); needs `bpftrace` (Debian: apt-get install -y
bpftrace), `ss`, `ip`, `iptables`. Each run makes a private namespace `hm20-<pid>-<mode>` and removes it.

    sudo python3 scripts/measure/issue20.py MODE --old /path/old/tcp-lab --new target/debug/tcp-lab [--port P] [-n N]

MODE:
  tw        finding 2 + 3 (TIME_WAIT): N connections whose client closes first (shutdown, read the
            server's FIN, close): TIME_WAIT lines against the kernel's hand-over (`FIN_WAIT_2 → CLOSE`
            of the client tuple in the tracepoint, read by bpftrace with the namespace) and against
            `ss` polled every 10 ms in the namespace; then waits for the 60 s TIME_WAITs to expire and
            times tcp-lab's "gone" after `ss` stops showing them.   (--expiry 0 skips the wait)
  ends      finding 3 (other ends): full FIN_WAIT_2 killed by RST, full FIN_WAIT_1 killed by RST
            (tracepoint `→ CLOSE` is the reference), orphaned FIN_WAIT_2 mini-sockets expiring with
            net.ipv4.tcp_fin_timeout=3 in the namespace (`ss` every 10 ms is the reference).
  listener  finding 4: a listener opened and closed N times (default 50), one connection each time:
            `appeared in LISTEN` lines beyond the kernel's N, and those that arrive while the kernel
            has no listener (phantoms).
  tfo       finding 5a: TCP Fast Open (tcp_fastopen=3 in the namespace), 5 listener cycles x 5
            connections: server-side children reported in SYN_RECV / ESTABLISHED.
  synsent   finding 5b: SYNs to the port dropped by iptables in the namespace; N connects: time
            from the kernel's `CLOSE → SYN_SENT` to tcp-lab's SYN_SENT line.

Latency is the arrival time of tcp-lab's JSON line on the pipe (CLOCK_MONOTONIC in this script)
minus the kernel time (bpftrace `nsecs`, CLOCK_MONOTONIC) or the `ss` poll that first missed the
socket. Every address is 127.0.0.1, so a socket is named by (local port, remote port).
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

ST = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT_1", 5: "FIN_WAIT_2",
      6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
      12: "NEW_SYN_RECV"}


def mono():
    return time.monotonic_ns()


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


# ---------------------------------------------------------------- the observers (host side)

class Watch:
    """One `tcp-lab watch --format json`, each line stamped when it arrives."""

    def __init__(self, name, binary, ns, port):
        self.name, self.lines = name, []
        self.proc = subprocess.Popen(
            [binary, "watch", "--netns", ns, "--port", str(port), "--format", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            now = mono()
            try:
                self.lines.append((now, json.loads(line)))
            except ValueError:
                pass

    def ready(self):
        return any(j.get("event") == "summary" for _, j in self.lines)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.thread.join(5)
        err = self.proc.stderr.read().strip()
        if err:
            print(f"[{self.name} stderr] {err[:500]}", file=sys.stderr)

    def changes(self):
        """(arrival_ns, event, local_port, remote_port, from, to) of state/gone lines."""
        out = []
        for t, j in self.lines:
            if j.get("event") in ("state", "gone") and j.get("local"):
                out.append((t, j["event"], port_of(j["local"]), port_of(j["remote"]),
                            j.get("from"), j.get("to")))
        return out

    def folded(self, frm, to):
        """(arrival_ns, count) of the lines that fold many sockets' same change into one."""
        return [(t, j.get("count", 0)) for t, j in self.lines
                if j.get("event") == "states" and j.get("from") == frm and j.get("to") == to]


class Trace:
    """bpftrace on sock:inet_sock_set_state, only the namespace's sockets of the port."""

    def __init__(self, ns_inum, port):
        prog = (
            "tracepoint:sock:inet_sock_set_state /args->protocol == 6 && "
            f"(args->sport == {port} || args->dport == {port}) && "
            "((struct sock *)args->skaddr)->__sk_common.skc_net.net->ns.inum == "
            f"{ns_inum}/ {{ printf(\"E %llu %d %d %d %d\\n\", nsecs, args->oldstate, "
            "args->newstate, args->sport, args->dport); }")
        self.proc = subprocess.Popen(["bpftrace", "-B", "line", "-e", prog],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events, self.attached = [], threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("Attaching"):
                self.attached.set()
            elif line.startswith("E "):
                _, ns, old, new, sp, dp = line.split()
                self.events.append((int(ns), ST[int(old)], ST[int(new)], int(sp), int(dp)))

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.thread.join(5)


class SsPoll:
    """`ss` every 10 ms inside the namespace (a child process), its rows stamped by the poll."""

    def __init__(self, ns, port):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__), "_sspoll",
             "--port", str(port)], stdout=subprocess.PIPE, text=True)
        self.polls = []  # (ns, {(lport, rport): state})
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            t, rows = line.split(" ", 1)
            self.polls.append((int(t), {tuple(k): s for k, s in json.loads(rows)}))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)
        self.thread.join(5)

    def ends(self, state):
        """{tuple: ns of the first poll that no longer showed it in `state`} (seen in it before)."""
        seen, ended = {}, {}
        for t, rows in self.polls:
            for k in list(seen):
                if rows.get(k) != state and k not in ended:
                    ended[k] = t
            for k, s in rows.items():
                if s == state:
                    seen[k] = t
                    ended.pop(k, None)
        return ended, seen


def sspoll_child(port):
    names = {"TIME-WAIT": "TIME_WAIT", "FIN-WAIT-2": "FIN_WAIT_2", "FIN-WAIT-1": "FIN_WAIT_1"}
    while True:
        t = mono()
        out = subprocess.run(["ss", "-Htan", f"( sport = :{port} or dport = :{port} )"],
                             capture_output=True, text=True).stdout
        rows = []
        for ln in out.splitlines():
            f = ln.split()
            if len(f) >= 5 and f[0] in names:
                rows.append([[port_of(f[3]), port_of(f[4])], names[f[0]]])
        print(t, json.dumps(rows), flush=True)
        time.sleep(max(0.0, 0.010 - (mono() - t) / 1e9))


# ---------------------------------------------------------------- workloads (inside the namespace)

def listener(port, backlog=512, tfo=False):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if tfo:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
    s.bind(("127.0.0.1", port))
    s.listen(backlog)
    return s


def rst_close(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()


def work_tw(port, n):
    lst = listener(port)
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", port))
        s, _ = lst.accept()
        c.shutdown(socket.SHUT_WR)          # client first: FIN_WAIT_1 → FIN_WAIT_2
        s.recv(1)                           # server sees EOF
        s.close()                           # its FIN: the client's full socket hands over to TIME_WAIT
        c.recv(1)
        c.close()
        time.sleep(0.02)
    lst.close()


def work_ends(port, n):
    cat = {"fw2_rst": [], "fw1_rst": [], "orphan": []}
    lst = listener(port)
    for i in range(n):
        # full FIN_WAIT_2 killed by the server's RST
        c = socket.create_connection(("127.0.0.1", port))
        s, _ = lst.accept()
        c.shutdown(socket.SHUT_WR)
        cat["fw2_rst"].append(c.getsockname()[1])
        s.recv(1)
        time.sleep(0.05)
        rst_close(s)
        time.sleep(0.05)
        c.close()
        # full FIN_WAIT_1 (its FIN stuck behind unread data, zero window) killed by RST
        c = socket.create_connection(("127.0.0.1", port))
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        s, _ = lst.accept()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.setblocking(False)
        try:
            while True:
                c.send(b"x" * 65536)
        except BlockingIOError:
            pass
        c.shutdown(socket.SHUT_WR)
        cat["fw1_rst"].append(c.getsockname()[1])
        time.sleep(0.1)
        rst_close(s)                        # unread data: close sends RST anyway
        time.sleep(0.05)
        c.close()
    # orphaned FIN_WAIT_2 mini-sockets: client closes, server never does (fin_timeout=3 s)
    keep = []
    for i in range(n):
        c = socket.create_connection(("127.0.0.1", port))
        s, _ = lst.accept()
        cat["orphan"].append(c.getsockname()[1])
        c.close()
        keep.append(s)
        time.sleep(0.05)
    time.sleep(5)
    for s in keep:
        s.close()
    lst.close()
    return cat


def work_listener(port, n):
    for _ in range(n):
        lst = listener(port)
        c = socket.create_connection(("127.0.0.1", port))
        s, _ = lst.accept()
        c.close()
        s.close()
        time.sleep(0.08)
        lst.close()
        time.sleep(0.12)


def work_tfo(port, cycles, per):
    for _ in range(cycles):
        lst = listener(port, tfo=True)
        for _ in range(per):
            c = socket.socket()
            c.sendto(b"hello", socket.MSG_FASTOPEN, ("127.0.0.1", port))
            s, _ = lst.accept()
            s.recv(16)
            s.sendall(b"ok")
            c.recv(16)
            c.close()
            s.close()
            time.sleep(0.05)
        time.sleep(0.1)
        lst.close()
        time.sleep(0.3)
    # the namespace's own counters: how many children were really Fast Open ones
    names, vals = [ln.split() for ln in open("/proc/self/net/netstat") if ln.startswith("TcpExt:")]
    ext = dict(zip(names[1:], map(int, vals[1:])))
    return {k: ext.get(k, 0) for k in ("TCPFastOpenPassive", "TCPFastOpenActive",
                                         "TCPFastOpenCookieReqd")}


def work_synsent(port, n):
    lst = listener(port)  # SYNs to it are dropped by iptables
    for _ in range(n):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        time.sleep(0.5)
        c.close()
        time.sleep(0.2)
    lst.close()


# ---------------------------------------------------------------- harness

def sh(*cmd):
    subprocess.run(cmd, check=True)


def stats(xs):
    if not xs:
        return "n=0"
    xs = sorted(xs)
    return (f"n={len(xs)} median={statistics.median(xs):.1f} ms "
            f"p90={xs[int(0.9 * (len(xs) - 1))]:.1f} ms worst={xs[-1]:.1f} ms")


def first_after(lines, t0, pred):
    for ln in lines:
        if ln[0] >= t0 and pred(ln):
            return ln
    return None


def run(args):
    ns = f"hm20-{os.getpid()}-{args.mode}"
    sh("ip", "netns", "add", ns)
    watches, tr, ssp = [], None, None
    try:
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        inum = os.stat(f"/run/netns/{ns}").st_ino
        if args.mode == "ends":
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.tcp_fin_timeout=3")
        if args.mode == "tfo":
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.tcp_fastopen=3")
        if args.mode == "synsent":
            sh("ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-p", "tcp", "--dport",
               str(args.port), "--syn", "-j", "DROP")
        tr = Trace(inum, args.port)
        if not tr.attached.wait(60):
            raise SystemExit("bpftrace did not attach")
        for name, b in (("old", args.old), ("new", args.new)):
            watches.append(Watch(name, b, ns, args.port))
        deadline = time.time() + 30
        while not all(w.ready() for w in watches) and time.time() < deadline:
            time.sleep(0.05)
        if args.mode in ("tw", "ends"):
            ssp = SsPoll(ns, args.port)
        time.sleep(1)
        t_start = mono()
        out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                              "_work", args.mode, "--port", str(args.port), "-n", str(args.n)],
                             check=True, capture_output=True, text=True).stdout
        args.cat = json.loads(out) if out.strip() else {}
        settle = 3.0
        if args.mode == "tw" and args.expiry:
            settle = 66.0
        time.sleep(settle)
    finally:
        for w in watches:
            w.stop()
        if ssp:
            ssp.stop()
        if tr:
            tr.stop()
        subprocess.run(["ip", "netns", "del", ns])
    ev = [e for e in tr.events if e[0] >= t_start]
    print(f"# mode={args.mode} port={args.port} n={args.n} namespace={ns} "
          f"kernel events={len(ev)}")
    if args.dump:
        os.makedirs(args.dump, exist_ok=True)
        for w in watches:
            with open(os.path.join(args.dump, f"{args.mode}-{w.name}.jsonl"), "w") as f:
                for t, j in w.lines:
                    f.write(f"{t} {json.dumps(j, ensure_ascii=False)}\n")
        with open(os.path.join(args.dump, f"{args.mode}-kernel.txt"), "w") as f:
            for e in tr.events:
                f.write(" ".join(map(str, e)) + "\n")
    for w in watches:
        base = baseline(w.changes(), ev)
        print(f"[{w.name}] baseline, every tracepoint change other than → CLOSE, kernel → line: "
              f"{stats(base)}")
        args.watch = w
        ANALYSE[args.mode](w.name, w.changes(), ev, ssp, args)


def matched(ch, kernel, pred):
    """For each kernel event (t, key), the delay to the first line (same key, `pred`) after it."""
    by = {}
    for ln in ch:
        by.setdefault((ln[2], ln[3]), []).append(ln)
    out, missing = [], 0
    for t, key in kernel:
        ln = first_after(by.get(key, []), t, pred)
        if ln is None:
            missing += 1
        else:
            out.append((ln[0] - t) / 1e6)
    return out, missing


def baseline(ch, ev):
    d = []
    for t, o, n, sp, dp in ev:
        if n in ("CLOSE", "LISTEN", "SYN_SENT") or o == "CLOSE":
            continue
        got, _ = matched(ch, [(t, (sp, dp))], lambda ln, o=o, n=n: ln[4] == o and ln[5] == n)
        d += got
    return d


def an_tw(name, ch, ev, ssp, args):
    P = args.port
    hand = {(sp, dp): t for t, o, n, sp, dp in ev if dp == P and o == "FIN_WAIT_2" and n == "CLOSE"}
    tw_lines = {}
    lost = []
    for t, e, lp, rp, fr, to in ch:
        if rp == P and to == "TIME_WAIT" and (lp, rp) not in tw_lines:
            tw_lines[(lp, rp)] = t
    for t, e, lp, rp, fr, to in ch:
        if rp == P and e == "gone" and fr in ("FIN_WAIT_2", "FIN_WAIT_1") and (lp, rp) in hand:
            lost.append((lp, rp))
    ss_seen = set()
    if ssp:
        for _, rows in ssp.polls:
            ss_seen |= {k for k, s in rows.items() if s == "TIME_WAIT" and k[1] == P}
    lat = [(tw_lines[k] - t) / 1e6 for k, t in hand.items() if k in tw_lines]
    fold = args.watch.folded("FIN_WAIT_2", "TIME_WAIT")
    if fold:
        print(f"[{name}]   folded lines FIN_WAIT_2 → TIME_WAIT: {len(fold)} covering "
              f"{sum(c for _, c in fold)} sockets (no tuple: not in the latency)")
    print(f"[{name}] finding 2: kernel hand-overs FIN_WAIT_2→CLOSE {len(hand)}, in ss TIME_WAIT "
          f"{len(ss_seen & set(hand))}; tcp-lab TIME_WAIT lines {len(set(tw_lines) & set(hand))}, "
          f"missing {len(set(hand) - set(tw_lines))}, told gone from FIN_WAIT_x instead "
          f"{len(set(lost))}")
    print(f"[{name}]   latency hand-over → TIME_WAIT line: {stats(lat)}")
    if ssp and args.expiry:
        ended, _ = ssp.ends("TIME_WAIT")
        gone = {}
        for t, e, lp, rp, fr, to in ch:
            if e == "gone" and fr == "TIME_WAIT":
                gone.setdefault((lp, rp), t)
        d = [(gone[k] - t) / 1e6 for k, t in ended.items() if k in gone and k in hand]
        # folded "N sockets TIME_WAIT → gone" lines carry no tuple: give their slots, in order,
        # to the ss ends not told one by one
        slots = sorted(args.watch.folded("TIME_WAIT", None))
        for t in sorted(t for k, t in ended.items() if k in hand and k not in gone):
            while slots and (slots[0][0] < t or slots[0][1] == 0):
                slots.pop(0)  # arrived before this end, or used up
            if not slots:
                break
            d.append((slots[0][0] - t) / 1e6)
            gone[("folded", len(d))] = t
            slots[0] = (slots[0][0], slots[0][1] - 1)
        miss = [k for k in ended if k in hand][len(d):]
        print(f"[{name}] finding 3 (TIME_WAIT expiry): ss ends {len([k for k in ended if k in hand])}, "
              f"tcp-lab gone lines {len(d)}, missing {len(miss)}; "
              f"ss end → gone line: {stats(d)} (ss poll ~10 ms: an upper bound on the kernel's end)")


def an_ends(name, ch, ev, ssp, args):
    P = args.port
    for st, c in (("FIN_WAIT_2", "fw2_rst"), ("FIN_WAIT_1", "fw1_rst")):
        mine = set(args.cat[c])
        ends = {(sp, dp): t for t, o, n, sp, dp in ev
                if dp == P and sp in mine and o == st and n == "CLOSE"}
        gone = {}
        for t, e, lp, rp, fr, to in ch:
            if e == "gone" and (lp, rp) in ends:
                gone.setdefault((lp, rp), (t, fr))
        d = [(gone[k][0] - t) / 1e6 for k, t in ends.items() if k in gone]
        froms = sorted({v[1] or "?" for v in gone.values()})
        print(f"[{name}] finding 3 (full {st} → CLOSE by RST): kernel {len(ends)}, tcp-lab gone "
              f"{len(d)} (from {','.join(froms)}); kernel → gone line: {stats(d)}")
    # orphaned FIN_WAIT_2 mini-sockets: client tuples whose hand-over was FIN_WAIT_2 → CLOSE
    # while the server stayed in CLOSE_WAIT; their end is seen by ss only.
    ended, seen = ssp.ends("FIN_WAIT_2")
    full_ends = {(sp, P) for sp in args.cat["orphan"]}
    gone = {}
    for t, e, lp, rp, fr, to in ch:
        if e == "gone":
            gone.setdefault((lp, rp), t)
    mini = {k: t for k, t in ended.items() if k[1] == P and k in full_ends}
    d = [(gone[k] - t) / 1e6 for k, t in mini.items() if k in gone]
    print(f"[{name}] finding 3 (orphaned FIN_WAIT_2 expiry, fin_timeout 3 s): ss ends {len(mini)}, "
          f"tcp-lab gone {len(d)}; ss end → gone line: {stats(d)}")


def an_listener(name, ch, ev, ssp, args):
    P = args.port
    opens = [t for t, o, n, sp, dp in ev if sp == P and dp == 0 and n == "LISTEN"]
    closes = [t for t, o, n, sp, dp in ev if sp == P and dp == 0 and o == "LISTEN"]
    appeared = [t for t, e, lp, rp, fr, to in ch if lp == P and rp == 0 and to == "LISTEN"]
    gone = [t for t, e, lp, rp, fr, to in ch if lp == P and rp == 0 and e == "gone"]
    # a phantom: an `appeared in LISTEN` line that arrives after the kernel closed the listener of
    # its cycle and that is not the first appearance since the kernel's last open
    phantoms, last_open_used = 0, set()
    for t in appeared:
        op = max((o for o in opens if o <= t), default=None)
        if op is None or op in last_open_used:
            phantoms += 1
        else:
            last_open_used.add(op)
    print(f"[{name}] finding 4: kernel listens {len(opens)} closes {len(closes)}; tcp-lab "
          f"'appeared in LISTEN' {len(appeared)}, LISTEN gone {len(gone)}, phantoms {phantoms}")


def an_tfo(name, ch, ev, ssp, args):
    P = args.port
    kids = {(sp, dp) for t, o, n, sp, dp in ev if sp == P and dp != 0 and n == "SYN_RECV"}
    tfo = {(sp, dp) for t, o, n, sp, dp in ev if sp == P and dp != 0 and o == "SYN_RECV"}
    lst = len([1 for t, o, n, sp, dp in ev if sp == P and dp == 0 and n == "LISTEN"])
    first = {}
    for t, e, lp, rp, fr, to in ch:
        if lp == P and rp != 0:
            first.setdefault((lp, rp), (fr, to))
    rep_sr = sum(1 for k in kids if k in first and first[k][1] == "SYN_RECV")
    rep_est = sum(1 for k in kids if k in first and first[k][1] in ("SYN_RECV", "ESTABLISHED"))
    late = sorted({f"{v[0]}→{v[1]}" for k, v in first.items()
                   if k in kids and v[1] not in ("SYN_RECV", "ESTABLISHED")})
    la = len([1 for t, e, lp, rp, fr, to in ch if lp == P and rp == 0 and to == "LISTEN"])
    print(f"[{name}] namespace counters {args.cat}")
    print(f"[{name}] finding 5 (TFO): kernel listeners {lst}, children {len(kids)} "
          f"(SYN_RECV→ESTABLISHED {len(tfo)}); tcp-lab listeners {la}; children first reported in "
          f"SYN_RECV {rep_sr}, in SYN_RECV or ESTABLISHED {rep_est}, never {len(kids - set(first))}, "
          f"first seen later {sorted(late)}")


def an_synsent(name, ch, ev, ssp, args):
    P = args.port
    # the tracepoint's CLOSE → SYN_SENT fires before the port is chosen (sport 0): the tuple is
    # the one of the socket's next event (its SYN_SENT → CLOSE when the connect is abandoned)
    starts, pending = [], []
    for t, o, n, sp, dp in ev:
        if dp == P and n == "SYN_SENT":
            pending.append(t)
        elif dp == P and o == "SYN_SENT" and pending:
            starts.append((pending.pop(0), (sp, dp)))
    d, missing = matched(ch, starts, lambda ln: ln[5] == "SYN_SENT")
    print(f"[{name}] finding 5 (SYN dropped): kernel CLOSE→SYN_SENT {len(starts)}, tcp-lab SYN_SENT "
          f"lines {len(d)}, missing {missing}; kernel → line: {stats(d)}")


ANALYSE = {"tw": an_tw, "ends": an_ends, "listener": an_listener, "tfo": an_tfo,
           "synsent": an_synsent}
WORK = {"tw": lambda a: work_tw(a.port, a.n), "ends": lambda a: work_ends(a.port, a.n),
        "listener": lambda a: work_listener(a.port, a.n),
        "tfo": lambda a: work_tfo(a.port, 5, 5), "synsent": lambda a: work_synsent(a.port, a.n)}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_sspoll":
        p = argparse.ArgumentParser()
        p.add_argument("x")
        p.add_argument("--port", type=int)
        sspoll_child(p.parse_args().port)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_work":
        p = argparse.ArgumentParser()
        p.add_argument("x")
        p.add_argument("mode")
        p.add_argument("--port", type=int)
        p.add_argument("-n", type=int)
        a = p.parse_args()
        print(json.dumps(WORK[a.mode](a) or {}))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("mode", choices=sorted(ANALYSE))
    p.add_argument("--old", required=True, help="tcp-lab binary before the fixes")
    p.add_argument("--new", required=True, help="tcp-lab binary after the fixes")
    p.add_argument("--port", type=int, default=7020)
    p.add_argument("-n", type=int, default=None)
    p.add_argument("--expiry", type=int, default=1, help="tw: wait for the TIME_WAITs to expire")
    p.add_argument("--dump", help="write the raw lines (arrival ns + JSON) and kernel events here")
    a = p.parse_args()
    if a.n is None:
        a.n = {"tw": 200, "ends": 20, "listener": 50, "tfo": 25, "synsent": 10}[a.mode]
    run(a)


if __name__ == "__main__":
    main()
