#!/usr/bin/env python3
"""Usage: sudo scripts/churn-cpu.py BIN [ROUNDS ROUND_S WARM_S]
Side by side: `tcp-lab server --source trace` vs two bpftrace anchors on the same tracepoint,
filtered to the port, under ~200 connect/close per second: one that only counts in the kernel,
and one that prints a line per transition (addresses, ports, old and new state), which is what a
user would run to see each transition as tcp-lab does. CPU of each from /proc/PID/stat over
rounds, plus each one's BPF program run time (bpftool), and the transitions each reported.
With OBSERVER=watch, the measured tcp-lab is `tcp-lab watch --source trace` on a port that a plain
Python echo server serves (not measured): an observer against observers, without the echo work."""
import json, os, socket, subprocess, sys, threading, time, collections

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
ROUND_S = float(sys.argv[3]) if len(sys.argv) > 3 else 10
WARM_S = float(sys.argv[4]) if len(sys.argv) > 4 else 20
TICK = os.sysconf('SC_CLK_TCK')
import tempfile
OUT = tempfile.mkdtemp(prefix='churn-cpu-')

def free_port():
    s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close(); return p

def cpu(pid):
    with open(f'/proc/{pid}/stat') as f:
        parts = f.read().rsplit(')', 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICK  # utime + stime

def progs():
    """BPF programs loaded now: id -> run_time_ns (kernel.bpf_stats_enabled=1 counts them)."""
    r = subprocess.run(['bpftool', 'prog', 'show', '-j'], capture_output=True, text=True)
    try:
        return {p['id']: p.get('run_time_ns', 0) for p in json.loads(r.stdout or '[]')}
    except ValueError:
        return {}

def new_progs(before, wait=5):
    """The ids loaded since `before` (a program attaches a moment after its process starts)."""
    end = time.time() + wait
    while time.time() < end:
        ids = set(progs()) - before
        if ids:
            time.sleep(0.5)
            return set(progs()) - before
        time.sleep(0.1)
    return set()

# BPF programs run in the kernel, in whoever fires the tracepoint: /proc/PID/stat does not count
# them. With the stats on, bpftool's run_time_ns does (tcp-lab's namespace filter and bpftrace's).
stats_was = open('/proc/sys/kernel/bpf_stats_enabled').read().strip()
open('/proc/sys/kernel/bpf_stats_enabled', 'w').write('1')
port = free_port()
loaded = set(progs())
out = open(os.path.join(OUT, 'server.jsonl'), 'w')
if os.environ.get('OBSERVER') == 'watch':
    def echo_server():
        ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(('127.0.0.1', port)); ls.listen(1024)
        while True:
            c, _ = ls.accept()
            try:
                c.settimeout(1); d = c.recv(64)
                if d: c.sendall(d)
                c.recv(64)  # the client's FIN
            except OSError:
                pass
            c.close()
    threading.Thread(target=echo_server, daemon=True).start()
    srv = subprocess.Popen([BIN, 'watch', '--port', str(port), '--source', 'trace', '--format', 'json'],
                           stdout=out, stderr=subprocess.DEVNULL)
else:
    srv = subprocess.Popen([BIN, 'server', '--port', str(port), '--source', 'trace', '--format', 'json'],
                           stdout=out, stderr=subprocess.DEVNULL)
prog = ('tracepoint:sock:inet_sock_set_state /args->sport == %d || args->dport == %d/ '
        '{ @[args->newstate] = count(); }' % (port, port))
deadline = time.time() + 10
while time.time() < deadline:
    try:
        socket.create_connection(('127.0.0.1', port), timeout=1).close(); break
    except OSError:
        time.sleep(0.1)
lab_progs = new_progs(loaded)
loaded |= lab_progs
bt = subprocess.Popen(['bpftrace', '-e', prog], stdout=open(os.path.join(OUT, 'bpftrace.out'), 'w'),
                      stderr=subprocess.STDOUT)
bt_progs = new_progs(loaded, 15)
loaded |= bt_progs
# The honest anchor: one printed line per transition, as tcp-lab reports each one.
show = ('tracepoint:sock:inet_sock_set_state /args->protocol == 6 && (args->sport == %d || '
        'args->dport == %d)/ { printf("%%s:%%d %%s:%%d %%d %%d\\n", ntop(args->saddr), args->sport, '
        'ntop(args->daddr), args->dport, args->oldstate, args->newstate); }' % (port, port))
bp = subprocess.Popen(['bpftrace', '-e', show], stdout=open(os.path.join(OUT, 'bpftrace-lines.out'), 'w'),
                      stderr=subprocess.DEVNULL)
bp_progs = new_progs(loaded, 15)
loaded |= bp_progs
# The brief's exact command too (unfiltered), for its CPU alone.
bt2 = subprocess.Popen(['bpftrace', '-e', 'tracepoint:sock:inet_sock_set_state { @[args->newstate] = count(); }'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
deadline = time.time() + 10
while time.time() < deadline:
    try:
        socket.create_connection(('127.0.0.1', port), timeout=1).close(); break
    except OSError:
        time.sleep(0.1)
time.sleep(2)  # bpftrace attached
stop = threading.Event(); made = [0]
def churn():
    # 200 connect/close per second: the client closes first (TIME_WAIT on the client side).
    nxt = time.time()
    while not stop.is_set():
        try:
            c = socket.create_connection(('127.0.0.1', port), timeout=1)
            c.sendall(b'0002hi'); c.recv(6); c.close(); made[0] += 1
        except OSError:
            pass
        nxt += 1 / 200
        d = nxt - time.time()
        if d > 0: time.sleep(d)
t = threading.Thread(target=churn); t.start()
time.sleep(WARM_S)
rows = []
for r in range(ROUNDS):
    p0 = progs()
    a0, b0, c0, d0, m0, t0 = cpu(srv.pid), cpu(bt.pid), cpu(bt2.pid), cpu(bp.pid), made[0], time.time()
    time.sleep(ROUND_S)
    a1, b1, c1, d1, m1, t1 = cpu(srv.pid), cpu(bt.pid), cpu(bt2.pid), cpu(bp.pid), made[0], time.time()
    p1 = progs()
    el = t1 - t0
    bpf = lambda ids: sum(p1.get(i, 0) - p0.get(i, 0) for i in ids) / el / 1e7  # % of a core
    lab = ((a1 - a0) / el * 100, bpf(lab_progs))
    cnt = ((b1 - b0) / el * 100, bpf(bt_progs))
    prn = ((d1 - d0) / el * 100, bpf(bp_progs))
    tot = lambda x: x[0] + x[1]
    print(f'round {r+1} ({(m1 - m0) / el:.0f} conn/s): tcp-lab {lab[0]:.2f} % + BPF {lab[1]:.3f} % = {tot(lab):.2f} %; '
          f'bpftrace printing {prn[0]:.2f} % + BPF {prn[1]:.3f} % = {tot(prn):.2f} %; '
          f'bpftrace counting {cnt[0]:.2f} % + BPF {cnt[1]:.3f} % = {tot(cnt):.2f} %  '
          f'(unfiltered counting {(c1 - c0) / el * 100:.2f} %)')
    print(f'  ratio (with BPF): {tot(lab) / max(tot(prn), 0.01):.1f}x printing, '
          f'{tot(lab) / max(tot(cnt), 0.01):.1f}x counting;  BPF alone: '
          f'{lab[1] / max(prn[1], 1e-4):.1f}x printing\'s program, {lab[1] / max(cnt[1], 1e-4):.1f}x counting\'s', flush=True)
    rows.append((lab, prn, cnt))
stop.set(); t.join()
time.sleep(3)
srv.send_signal(2); bt.send_signal(2); bt2.send_signal(2); bp.send_signal(2)
srv.wait(timeout=90); bt.wait(timeout=90); bt2.wait(timeout=90); bp.wait(timeout=90)
open('/proc/sys/kernel/bpf_stats_enabled', 'w').write(stats_was)
out.close()
# count transitions: tcp-lab's kernel lines vs bpftrace's newstate counts
names = {1: 'ESTABLISHED', 2: 'SYN_SENT', 3: 'SYN_RECV', 4: 'FIN_WAIT_1', 5: 'FIN_WAIT_2', 6: 'TIME_WAIT',
         7: 'CLOSE', 8: 'CLOSE_WAIT', 9: 'LAST_ACK', 10: 'LISTEN', 11: 'CLOSING'}
bpf = collections.Counter()
for line in open(os.path.join(OUT, 'bpftrace.out')):
    if line.startswith('@['):
        k, v = line[2:].split(']:')
        bpf[names.get(int(k), k)] = int(v)
lab = collections.Counter()
for line in open(os.path.join(OUT, 'server.jsonl')):
    try: v = json.loads(line)
    except ValueError: continue
    if v.get('source') != 'kernel': continue
    if v.get('event') == 'states':
        lab[(v.get('to') or 'CLOSE')] += v.get('count', 0)
    else:
        lab[(v.get('to') or 'CLOSE')] += 1
lines = collections.Counter()
for line in open(os.path.join(OUT, 'bpftrace-lines.out')):
    f = line.split()
    if len(f) == 4 and f[3].isdigit():
        lines[names.get(int(f[3]), f[3])] += 1
print('connections made:', made[0])
print('bpftrace lines   :', dict(lines))
print('bpftrace newstate:', dict(bpf))
print('tcp-lab to-state :', dict(lab))
