#!/usr/bin/env python3
"""A large recording for measuring `tcp-lab replay`: real JSON lines repeated with growing
timestamps, fresh connection numbers and client ports, until the file reaches a size.

    tcp-lab run assets/scenarios/mojong.toml --port 0 --format json > a.jsonl
    tcp-lab run assets/scenarios/lost-fin.toml --slow --port 0 --format json > b.jsonl
    scripts/big-recording.py 64 a.jsonl b.jsonl > big.jsonl   # 64 MB (just under the cap)
    SECONDS_TOTAL=60 scripts/big-recording.py 64 a.jsonl b.jsonl > big.jsonl   # all of it within 60 s

Each input's own session line says which port is the server's; only the first is written
(the replay reads the first one)."""

import json
import os
import sys


def load(path, offset, conn_base):
    lines = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
    port = next((str(l.get("port")) for l in lines if l.get("event") == "session"), "")
    body = []
    for l in lines:
        if l.get("event") == "session":
            continue
        l["t"] = l.get("t", 0.0) + offset
        if "conn" in l:
            l["conn"] += conn_base
        body.append((l, port))
    return lines[0] if lines and lines[0].get("event") == "session" else None, body


def main():
    mb, files = float(sys.argv[1]), sys.argv[2:]
    limit = int(mb * (1 << 20)) - 4096
    header, body, offset, conns = None, [], 0.0, 0
    for f in files:
        h, b = load(f, offset, conns)
        header = header or h
        body += b
        offset = max(l["t"] for l, _ in body) + 0.5
        conns = max([l.get("conn", 0) for l, _ in body] + [conns])
    span, out, size, rep = offset, sys.stdout, 0, 0
    if os.environ.get("SECONDS_TOTAL"):
        # Squeeze each repetition so the whole file lasts about that long (a busy session).
        total = float(os.environ["SECONDS_TOTAL"])
        per_rep = sum(len(json.dumps(l, ensure_ascii=False)) + 1 for l, _ in body)
        scale = total / (limit / per_rep) / span
        for l, _ in body:
            l["t"] *= scale
        span *= scale
    if header:
        s = json.dumps(header, ensure_ascii=False) + "\n"
        out.write(s)
        size += len(s.encode())
    while True:
        for l, server_port in body:
            l = dict(l)
            l["t"] = round(l["t"] + rep * span, 6)
            if "conn" in l:
                l["conn"] += rep * conns
            # A fresh client port per repetition, so each one is its own socket.
            for k in ("local", "remote"):
                v = l.get(k)
                if isinstance(v, str) and ":" in v and v.rsplit(":", 1)[1] != server_port:
                    l[k] = v.rsplit(":", 1)[0] + ":" + str(20000 + rep % 40000)
            s = json.dumps(l, ensure_ascii=False) + "\n"
            n = len(s.encode())
            if size + n > limit:
                return
            out.write(s)
            size += n
        rep += 1


if __name__ == "__main__":
    main()
