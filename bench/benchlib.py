"""What the benchmark scripts share: loopback ports and waiting for a
server's greeting."""

import socket
import time

HOST = "127.0.0.1"


def free_port():
    """A loopback TCP port that nothing listens on just now (never 25)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port != 25:
            return port


def wait_banner(port, alive=None, timeout=20.0):
    """Waits until something on port says 220, then says QUIT.  False at
    the timeout, or as soon as alive() is false (the server died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            return False
        try:
            with socket.create_connection((HOST, port), timeout=2) as s:
                data = b""
                while b"\n" not in data:
                    chunk = s.recv(512)
                    if not chunk:
                        break
                    data += chunk
                if data.startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    try:
                        s.recv(512)
                    except OSError:
                        pass
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False
