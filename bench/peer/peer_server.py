"""What the Python scripts of bench/peer/ share: the repository root, a word list for prompts,
and starting, waiting for and talking to a server on a free loopback port."""
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORDS = ("ship keel hull mast sail deck anchor harbor wave tide storm crew captain rope knot "
         "compass chart island reef current wind bow stern rudder cargo lantern gull pier dock "
         "train station platform ticket rail engine carriage signal tunnel bridge track").split()
LLAMA_SERVER = os.environ.get("LLAMA_SERVER",
                              os.path.join(ROOT, "third_party/llama-build/bin/llama-server"))
TROUPE = os.path.join(ROOT, "build/release/troupe")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, body, timeout=600):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def wait_up(url, proc):
    """Returns once /health answers 200; exits the script if the server exits or never does."""
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("server never became ready")


def metric(url, name):
    """A /metrics sample's value (troupe), 0 when absent."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def quiet(*argv):
    """A start for serving(): the command with `--port PORT` appended, its output discarded."""
    return lambda port: subprocess.Popen([*argv, "--port", str(port)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def serving(start):
    """Starts a server with start(port) (a Popen), yields its URL once it is ready, stops it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(port)
    try:
        wait_up(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait()
