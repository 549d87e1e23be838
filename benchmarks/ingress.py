"""Memory of the exporter's HTTP server under connection attacks, with its limits and without.

Each attack runs against a fresh server process on loopback (the exporter's own App and
protocol, a 2 MB metrics body), and the figure is the process' peak resident memory (VmHWM)
above its resident memory before the attack. "limits off" is the same server with the pipelining
bound, the per-address cap and the connection cap lifted (what the server did before them); its
process is held to a 1.5 GiB address space so an attack cannot take the machine down.

Attacks (every one bounded in connections and time):
- pipelining: 20 connections each send 7,500 pipelined `GET /metrics` (one 256 KiB read) and
  never read;
- handshakes: TLS connections from 8 addresses that never send a ClientHello;
- slow readers: connections from 8 addresses ask for /metrics and never read (also over TLS);
- half-sent heads: connections from 8 addresses each send 15 KiB of headers, never the end.
Each of the last three runs with 256 connections (the most the limits admit: their worst case),
with 1,000 (the caps hold), and with 1,000 and the limits off.

    python -m benchmarks.ingress [--attack NAME ...]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONNECTIONS = 1000
CONNECTIONS_ADMITTED = 256
ADDRESSES = [f"127.0.0.{n}" for n in range(21, 29)]
GIB = 2**30


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def serve(limits: str, tls_dir: str | None) -> None:
    """The server process: prints its port, serves until stdin closes."""
    import threading

    import anyio
    from prometheus_client.core import GaugeMetricFamily

    from exporter.exposition.body import Exposition
    from exporter.web.config import TLSServerConfig, WebConfig
    from exporter.web.server import App, bind, build_server

    if limits == "off":
        resource.setrlimit(resource.RLIMIT_AS, (int(1.5 * GIB), int(1.5 * GIB)))
    family = GaugeMetricFamily("bench_series", "a 2 MB body", labels=["host", "version"])
    for n in range(25_000):
        family.add_metric([f"host-{n:06d}.example.internal", "18.1.4"], float(n))
    exposition = Exposition()
    exposition.update(("bench",), [family])
    web = None
    if tls_dir:
        base = Path(tls_dir)
        web = WebConfig(
            tls_server_config=TLSServerConfig(
                cert_file=base / "server.crt", key_file=base / "server.key"
            )
        )
    overrides = (
        {"max_pipelined": 10**9, "max_per_address": 10**9, "max_connections": 10**9}
        if limits == "off"
        else {}
    )
    sock = bind("127.0.0.1:0")
    server = build_server(App(exposition, lambda: True), web, 1.0, **overrides)
    print(sock.getsockname()[1], flush=True)

    def stop_on_eof() -> None:
        sys.stdin.read()
        server.should_exit = True

    threading.Thread(target=stop_on_eof, daemon=True).start()
    anyio.run(lambda: server.serve(sockets=[sock]))


class Server:
    def __init__(self, limits: str, tls_dir: str | None) -> None:
        args = [sys.executable, "-m", "benchmarks.ingress", "--serve", limits]
        self.process = subprocess.Popen(
            [*args, *(["--tls", tls_dir] if tls_dir else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        time.sleep(0.5)
        # Building the body peaked higher than the server idles: forget that peak (VmHWM)
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        self.before = _status(self.process.pid, "VmRSS")

    def peak_growth(self) -> int:
        try:
            return _status(self.process.pid, "VmHWM") - self.before
        except (FileNotFoundError, LookupError):
            return -1

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _connect(port: int, source: str, rcvbuf: int = 0) -> socket.socket | None:
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    sock.settimeout(2)
    try:
        sock.connect(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    sock.setblocking(False)
    return sock


def _send(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(BlockingIOError, ConnectionError, OSError):
        sock.send(data)


def attack(name: str, port: int, connections: int) -> list[socket.socket]:
    socks: list[socket.socket] = []
    if name == "pipelining":
        burst = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 7500  # one 256 KiB read
        for n in range(20):
            sock = _connect(port, ADDRESSES[n % len(ADDRESSES)], rcvbuf=4096)
            if sock:
                sock.settimeout(2)  # the whole burst, or as much as the server takes in 2 s
                with contextlib.suppress(OSError):
                    sock.sendall(burst)
                sock.setblocking(False)
                socks.append(sock)
        return socks
    for n in range(connections):
        sock = _connect(port, ADDRESSES[n % len(ADDRESSES)], rcvbuf=4096)
        if sock is None:
            continue
        if name == "tls slow readers":
            socks.append(_tls_slow_reader(sock))
            continue
        if name == "slow readers":
            _send(sock, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        elif name == "half-sent heads":
            _send(sock, b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 15_000)
        socks.append(sock)
    return socks


def _tls_slow_reader(sock: socket.socket) -> socket.socket:
    """Finish the handshake, ask for /metrics, never read."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    sock.setblocking(True)
    sock.settimeout(5)
    try:
        secure = context.wrap_socket(sock, server_hostname="127.0.0.1")
        secure.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        secure.setblocking(False)
        return secure
    except (OSError, ssl.SSLError):
        return sock


def _open(sock: socket.socket) -> bool:
    """Whether the connection is still established (TCP_INFO's state): a reset one may still
    have unread answer bytes queued."""
    if sock.fileno() < 0:
        return False
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)
    return info[0] == 1  # TCP_ESTABLISHED


ATTACKS = {
    "pipelining": False,
    "handshakes": True,
    "slow readers": False,
    "tls slow readers": True,
    "half-sent heads": False,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=["on", "off"], help=argparse.SUPPRESS)
    parser.add_argument("--tls", help=argparse.SUPPRESS)
    parser.add_argument("--attack", action="append", choices=sorted(ATTACKS))
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.tls)
        return 0
    import trustme

    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1")
        leaf.cert_chain_pems[0].write_to_path(f"{tmp}/server.crt")
        leaf.private_key_pem.write_to_path(f"{tmp}/server.key")
        print(f"{'attack':16} {'limits':7} {'sent':>5} {'held':>5} {'peak RSS growth':>16}  server")
        for name in args.attack or list(ATTACKS):
            # 256 from 8 addresses is the most the limits admit (the worst case they allow);
            # 1,000 shows the caps holding; the same 1,000 with the limits off, as before.
            runs = [("on", CONNECTIONS_ADMITTED), ("on", CONNECTIONS), ("off", CONNECTIONS)]
            if name == "pipelining":
                runs = [("on", 20), ("off", 20)]
            for limits, connections in runs:
                server = Server(limits, tmp if ATTACKS[name] else None)
                socks: list[socket.socket] = []
                try:
                    socks = attack(name, server.port, connections)
                    time.sleep(1.0)
                    held = sum(_open(sock) for sock in socks)
                    time.sleep(3.0)  # within every deadline (5 s handshake, 10 s head, 30 s)
                    growth = server.peak_growth()
                    state = "alive" if server.alive() else "died (out of memory)"
                finally:
                    for sock in socks:
                        sock.close()
                    server.close()
                print(
                    f"{name:16} {limits:7} {connections:5d} {held:5d} "
                    f"{growth / 2**20:13.1f} MiB  {state}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
