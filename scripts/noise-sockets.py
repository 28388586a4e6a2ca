import socket, resource, time, sys
# usage: noise-sockets.py SECONDS [SOCKETS]   (connected pairs, SOCKETS fds in all; 18000 by default)
n = int(sys.argv[2]) if len(sys.argv) > 2 else 18000
# At most the hard limit (often 20,000 in containers): start more processes for more.
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
n = min(n, hard - 100) if hard != resource.RLIM_INFINITY else n
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, hard))
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(4096)
held = []
while len(held) < n:
    c = socket.create_connection(l.getsockname()); s, _ = l.accept(); held += [c, s]
print("ready", len(held), flush=True)
time.sleep(float(sys.argv[1]))
