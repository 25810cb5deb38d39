#!/usr/bin/env python3
"""Time to first answer for a well-behaved client while one address floods the server.

The flooder (source 127.0.0.1) holds COUNT connections open and reopens every one the server
closes, so the flood lasts as long as the measurement (one client reconnecting in a loop):
  idle     connections that send nothing
  headers  connections that send a request's headers (Content-Length: 100) and no body
The good client (source 127.0.0.2; the server must listen on 127.0.0.1 or 0.0.0.0) then asks
again and again on fresh connections until it gets a 200, pausing 50 ms after a refusal, a
reset or a timeout. Printed as one JSON line: the time to its first 200 since the flood was in
place, the refusals and resets it met on the way, the latency of 5 more requests, and how many
flood connections the server closed meanwhile.

  flood.py --port 8080 --kind idle --count 2000 [--limit 60] [--path /v1/chat/completions]
"""

import argparse
import json
import selectors
import socket
import statistics
import threading
import time

GOOD_SOURCE = "127.0.0.2"
FLOOD_SOURCE = "127.0.0.1"


def request(path, body):
    data = body.encode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Connection: close\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data


def ask(port, path, body, timeout):
    """One request from GOOD_SOURCE; returns (status or an error name, seconds)."""
    t0 = time.monotonic()
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.bind((GOOD_SOURCE, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(request(path, body))
        head = b""
        while b"\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                return "eof", time.monotonic() - t0
            head += chunk
        status = int(head.split(b" ", 2)[1])
        while s.recv(65536):
            pass
        return status, time.monotonic() - t0
    except ConnectionResetError:
        return "reset", time.monotonic() - t0
    except (socket.timeout, TimeoutError):
        return "timeout", time.monotonic() - t0
    except OSError as e:
        return f"error:{e.errno}", time.monotonic() - t0
    finally:
        s.close()


class Flood:
    """COUNT connections from FLOOD_SOURCE, each reopened when the server closes it."""

    def __init__(self, port, kind, count):
        self.port, self.kind, self.count = port, kind, count
        self.sel = selectors.DefaultSelector()
        self.closed_by_server = 0
        self.stop = False
        self.lock = threading.Lock()

    def open_one(self):
        s = socket.socket()
        s.bind((FLOOD_SOURCE, 0))
        try:
            s.connect(("127.0.0.1", self.port))
            if self.kind == "headers":
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")
        except OSError:
            s.close()
            return False
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ)
        return True

    def fill(self):
        opened = 0
        while opened < self.count:
            opened += 1 if self.open_one() else 0

    def run(self):
        """Reopens what the server closes until stopped."""
        while not self.stop:
            for key, _ in self.sel.select(timeout=0.1):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if data:
                    continue  # an answer (a 503) before the close: drop it
                self.sel.unregister(s)
                s.close()
                with self.lock:
                    self.closed_by_server += 1
                if not self.stop:
                    self.open_one()

    def close(self):
        self.stop = True
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--kind", choices=["none", "idle", "headers"], required=True)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--limit", type=float, default=60.0, help="give up after this many seconds")
    ap.add_argument("--path", default="/v1/chat/completions")
    ap.add_argument("--body", default='{"messages":[{"role":"user","content":"hi"}],'
                                      '"max_tokens":2}')
    a = ap.parse_args()

    flood = None
    if a.kind != "none":
        flood = Flood(a.port, a.kind, a.count)
        flood.fill()
        threading.Thread(target=flood.run, daemon=True).start()
    start = time.monotonic()
    met = {}
    first = None
    while time.monotonic() - start < a.limit:
        status, _ = ask(a.port, a.path, a.body, timeout=max(1.0, a.limit / 4))
        if status == 200:
            first = time.monotonic() - start
            break
        met[str(status)] = met.get(str(status), 0) + 1
        time.sleep(0.05)
    after = []
    if first is not None:
        for _ in range(5):
            status, secs = ask(a.port, a.path, a.body, timeout=a.limit)
            after.append(round(secs * 1000, 2) if status == 200 else str(status))
    closed = 0
    if flood:
        flood.close()
        closed = flood.closed_by_server
    ok = [x for x in after if isinstance(x, float)]
    print(json.dumps({
        "kind": a.kind, "count": a.count if flood else 0,
        "first_answer_s": None if first is None else round(first, 4),
        "gave_up_after_s": None if first is not None else a.limit,
        "met_before_first": met,
        "next_ms": after, "next_median_ms": statistics.median(ok) if ok else None,
        "flood_closed_by_server": closed,
    }))


if __name__ == "__main__":
    main()
