#!/usr/bin/env python3
"""Issue 22, side by side in one run: CPU (utime+stime of /proc/PID/stat, children included for
`watch`, whose `ss` it waits for) of dashboards in tmux against `watch … ss` on the same port.

    python3 scripts/measure/issue22.py idle  --old OLD/tcp-lab --new target/release/tcp-lab [-r 3] [-s 30] [--noise 18000]
    python3 scripts/measure/issue22.py watch --old OLD/tcp-lab --new target/release/tcp-lab [--noise 50000] [--hog 100000]

idle:  the lab dashboard of each binary (its own port), one connection closed by the client (c x X:
       one TIME_WAIT), against `watch -n 1 ss -tan` on the new one's port.
watch: a churning port (10 connections a second from a Python client, each held 2 s) on a host with `--noise`
       sockets held by another process (scripts/noise-sockets.py) and `--hog` more sockets
       (fds for the owners walk: --hog 100000); `tcp-lab watch --port P` of each
       binary against `watch -n 0.1 ss -tan` on that port.
Needs tmux, watch, ss. Every round measures all at the same time for `-s` seconds.
"""
import argparse, os, socket, subprocess, sys, threading, time

TCK = os.sysconf("SC_CLK_TCK")


def cpu(pid, children=False):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    # fields after the name: state is [0]; utime [11], stime [12], cutime [13], cstime [14]
    t = int(f[11]) + int(f[12])
    if children:
        t += int(f[13]) + int(f[14])
    return t


def tmux(name, cmd):
    subprocess.run(["tmux", "kill-session", "-t", name], stderr=subprocess.DEVNULL)
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "40", "exec " + cmd], check=True)
    for _ in range(100):
        out = subprocess.run(["tmux", "list-panes", "-t", name, "-F", "#{pane_pid}"],
                             capture_output=True, text=True).stdout.split()
        if out:
            return int(out[0])
        time.sleep(0.05)
    sys.exit(f"tmux session {name} did not start")


def keys(name, *k):
    for x in k:
        subprocess.run(["tmux", "send-keys", "-t", name, x])
        time.sleep(0.4)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def measure(procs, secs, rounds):
    """procs: name -> (pid, children). Prints % of one core per round."""
    rows = {n: [] for n in procs}
    for r in range(rounds):
        a = {n: cpu(p, c) for n, (p, c) in procs.items()}
        time.sleep(secs)
        b = {n: cpu(p, c) for n, (p, c) in procs.items()}
        for n in procs:
            rows[n].append((b[n] - a[n]) / TCK / secs * 100)
        print(f"round {r + 1}: " + "  ".join(f"{n} {rows[n][-1]:.2f}%" for n in procs), flush=True)
    return rows


def churn(port, rate, stop):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", port))
    l.listen(128)
    # Each connection is held 2 s (new socket inodes on the port every round), then closed by
    # the client (a TIME_WAIT).
    held = []
    while not stop.is_set():
        c = socket.create_connection(("127.0.0.1", port))
        s, _ = l.accept()
        held.append((time.monotonic(), c, s))
        while held and time.monotonic() - held[0][0] > 2:
            _, c, s = held.pop(0)
            c.close()
            s.close()
        time.sleep(1 / rate)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["idle", "watch"])
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("-s", "--secs", type=float, default=30)
    ap.add_argument("--noise", type=int, default=None,
                    help="sockets held by another process (watch: 50000 unless given; idle: none unless given)")
    ap.add_argument("--hog", type=int, default=0, help="more sockets (fds) held by a third process")
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    helpers = []
    if a.noise is None:
        a.noise = 50000 if a.mode == "watch" else 0
    try:
        # 18,000 sockets a process (the hard fd limit here is 20,000).
        for n in (a.noise, a.hog):
            while n > 0:
                k = min(n, 18000)
                n -= k
                p = subprocess.Popen([sys.executable, os.path.join(here, "..", "noise-sockets.py"),
                                      "100000", str(k)], stdout=subprocess.PIPE, text=True)
                helpers.append(p)
                print("noise:", p.stdout.readline().strip(), flush=True)
        if a.mode == "idle":
            po, pn = free_port(), free_port()
            pid_old = tmux("i22old", f"{a.old} --port {po}")
            pid_new = tmux("i22new", f"{a.new} --port {pn}")
            time.sleep(1.5)
            for s in ("i22old", "i22new"):
                keys(s, "c", "x", "X")
            pid_ss = tmux("i22ss", f"watch -n 1 ss -tan 'sport = :{pn} or dport = :{pn}'")
            time.sleep(2)
            procs = {"old": (pid_old, False), "new": (pid_new, False), "watch-1s-ss": (pid_ss, True)}
        else:
            port = free_port()
            stop = threading.Event()
            threading.Thread(target=churn, args=(port, 10, stop), daemon=True).start()
            time.sleep(1)
            pid_old = tmux("i22old", f"{a.old} watch --port {port}")
            pid_new = tmux("i22new", f"{a.new} watch --port {port}")
            pid_ss = tmux("i22ss", f"watch -n 0.1 ss -tan 'sport = :{port} or dport = :{port}'")
            time.sleep(3)
            procs = {"old": (pid_old, False), "new": (pid_new, False), "watch-0.1s-ss": (pid_ss, True)}
        rows = measure(procs, a.secs, a.rounds)
        ref = list(procs)[2]
        for n in ("old", "new"):
            ratios = [x / y if y else float("inf") for x, y in zip(rows[n], rows[ref])]
            print(f"{n}: {min(rows[n]):.2f}–{max(rows[n]):.2f} %, {min(ratios):.2f}–{max(ratios):.2f}× {ref}")
        print(f"{ref}: {min(rows[ref]):.2f}–{max(rows[ref]):.2f} %")
        for s in ("i22old", "i22new"):
            for line in subprocess.run(["tmux", "capture-pane", "-p", "-t", s], capture_output=True,
                                       text=True).stdout.splitlines()[:3]:
                print(f"  {s}| {line}")
    finally:
        for s in ("i22old", "i22new", "i22ss"):
            subprocess.run(["tmux", "kill-session", "-t", s], stderr=subprocess.DEVNULL)
        for p in helpers:
            p.kill()


if __name__ == "__main__":
    main()
