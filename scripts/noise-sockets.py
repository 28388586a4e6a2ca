import socket, resource, time, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(4096)
held = []
while len(held) < 18000:
    c = socket.create_connection(l.getsockname()); s, _ = l.accept(); held += [c, s]
print("ready", len(held), flush=True)
time.sleep(float(sys.argv[1]))
