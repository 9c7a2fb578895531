"""The milter client's TCP connection: smtpd writes the macros and the
command they go with as two packets, so Nagle's algorithm must be off on
it, or every stage of every message waits for the milter's delayed ACK
(bench/milter showed a fifth of the rate).  The test takes a duplicate of
smtpd's own socket (pidfd_getfd, Linux 5.6) and asks it for TCP_NODELAY:
no timing involved."""
import ctypes
import os
import socket
import unittest

from harness import PolicyCase, TRUSTED_ADDR
import test_milter

SYS_PIDFD_OPEN, SYS_PIDFD_GETFD = 434, 438


def peer_socket_fds(port):
    """[(pid, fd)] of sockets connected to 127.0.0.1:port, over every
    process (the front of smtpd holds the milter connection)."""
    inodes = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if int(cols[2].split(":")[1], 16) == port and cols[3] == "01":
                inodes.add(cols[9])
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir("/proc/%s/fd" % pid):
                link = os.readlink("/proc/%s/fd/%s" % (pid, fd))
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    out.append((int(pid), int(fd)))
        except OSError:
            continue
    return out


def nodelay(pid, fd):
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    if pidfd < 0:
        raise OSError(ctypes.get_errno(), "pidfd_open")
    try:
        dup = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if dup < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
    finally:
        os.close(pidfd)
    s = socket.socket(fileno=dup)
    try:
        return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        s.close()


@unittest.skipUnless(os.geteuid() == 0, "pidfd_getfd on smtpd needs root")
class MilterTcp(PolicyCase):
    def test_nodelay(self):
        m = test_milter.Milter(lambda cmd, data, m: None)
        self.addCleanup(m.close)
        d = self.smtpd(config_extra=test_milter.BASE + test_milter.milters(
            {"address": '"inet:127.0.0.1:%d"' % m.port}))
        c = self.client(d, source=TRUSTED_ADDR)   # EHLO: connected now
        fds = [pf for pf in peer_socket_fds(m.port) if pf[0] != os.getpid()]
        self.assertEqual(len(fds), 1, fds)
        try:
            on = nodelay(*fds[0])
        except OSError as e:
            self.skipTest("pidfd_getfd: %s" % e)
        self.assertNotEqual(on, 0, "TCP_NODELAY is off on the milter socket")
        c.cmd("QUIT")


if __name__ == "__main__":
    unittest.main()
