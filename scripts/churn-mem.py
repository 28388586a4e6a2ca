#!/usr/bin/env python3
"""Usage: sudo scripts/churn-mem.py BIN [TOTAL]
RSS of `tcp-lab server` (tracepoint) idle, under a 35,000-connection churn, then every 5 s for
70 s after the load ends (0 connections)."""
import os, socket, subprocess, sys, threading, time
BIN = sys.argv[1]; TOTAL = int(sys.argv[2]) if len(sys.argv) > 2 else 35000
def free_port():
    s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close(); return p
def rss(pid):
    for l in open(f'/proc/{pid}/status'):
        if l.startswith('VmRSS'): return int(l.split()[1]) / 1024
port = free_port()
srv = subprocess.Popen([BIN, 'server', '--port', str(port), '--source', 'trace', '--format', 'json'],
                       stdout=open('/dev/null', 'w'), stderr=subprocess.DEVNULL)
for _ in range(100):
    try: socket.create_connection(('127.0.0.1', port), timeout=1).close(); break
    except OSError: time.sleep(0.1)
time.sleep(3)
print(f'idle: {rss(srv.pid):.1f} MB', flush=True)
made = [0]; lock = threading.Lock()
def churn(n):
    for _ in range(n):
        try:
            c = socket.create_connection(('127.0.0.1', port), timeout=2)
            c.sendall(b'0002hi'); c.recv(6); c.close()
            with lock: made[0] += 1
        except OSError: pass
t0 = time.time(); ts = [threading.Thread(target=churn, args=(TOTAL // 8,)) for _ in range(8)]
for t in ts: t.start()
peak = 0
while any(t.is_alive() for t in ts):
    time.sleep(1); peak = max(peak, rss(srv.pid))
print(f'churn: {made[0]} connections in {time.time()-t0:.0f} s, peak RSS {peak:.1f} MB', flush=True)
for i in range(15):
    time.sleep(5)
    print(f'+{5*(i+1)} s after: {rss(srv.pid):.1f} MB', flush=True)
srv.send_signal(2); srv.wait(timeout=20)
