"""The runner keeps a relay connection open for a while after its last
message (about two seconds), for the destination's next one: messages
that come one after another to one next hop share a connection.  A
connection the next hop closed meanwhile is not used, and a kept one is
ended with QUIT when its time is up or the runner stops.  The next hop
is aiosmtpd, counting its sessions and QUITs."""
import time
import unittest

from qharness import QueueCase, wait_for

try:
    import asyncio
    from clientkit import Aio, Recorder
    HAVE_AIOSMTPD = True
except ImportError:
    HAVE_AIOSMTPD = False
    Recorder = object

FAST = "retry_min = 60; retry_max = 60; scan_interval = 1;"


class Hop(Recorder):
    """Counts sessions (at EHLO) and QUITs; with hang_up, closes the
    connection right after accepting each message, without a word."""

    def __init__(self, hang_up=False, **kw):
        super().__init__(**kw)
        self.hang_up = hang_up
        self.sessions = 0
        self.quits = []

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        self.sessions += 1
        return await super().handle_EHLO(server, session, envelope,
                                          hostname, responses)

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if self.hang_up:
            asyncio.get_running_loop().call_later(
                0.05, server.transport.close)
        return reply

    async def handle_QUIT(self, server, session, envelope):
        self.quits.append(time.monotonic())
        return "221 2.0.0 Bye"


@unittest.skipUnless(HAVE_AIOSMTPD, "python3-aiosmtpd is not installed")
class RelayReuse(QueueCase):
    def hop(self, **kw):
        h = Hop(**kw)
        s = Aio(h, auth_require_tls=True)
        s.__enter__()
        self.addCleanup(s.__exit__)
        routes = ('{ domain = "*"; action = "relay"; '
                  'host = "127.0.0.1:%d"; }' % s.port)
        self.setup_queue(routes, queue=FAST)
        self.start_runner()
        return h

    def send_and_wait(self, h, n):
        """Sends a message and waits for the next hop to have n."""
        self.send("alice@example.org", ["bob%d@example.net" % n])
        self.assertTrue(wait_for(lambda: len(h.messages) >= n, 10),
                        self.diag())

    def test_messages_one_after_another_share_a_connection(self):
        """Three messages, each sent once the one before has arrived: one
        connection; it is ended with QUIT a few seconds after the last."""
        h = self.hop()
        for n in (1, 2, 3):
            self.send_and_wait(h, n)
            time.sleep(0.3)
        last = time.monotonic()
        self.assertEqual(h.sessions, 1, self.diag())
        self.assertTrue(wait_for(lambda: h.quits, 10), self.diag())
        self.assertGreater(h.quits[0] - last, 0.5)
        self.assertTrue(wait_for(lambda: self.queue_ids() == []),
                        self.diag())

    def test_connection_closed_by_the_next_hop_is_not_used(self):
        """A next hop that hangs up after each message: the next message
        goes over a new connection at once, not deferred."""
        h = self.hop(hang_up=True)
        for n in (1, 2, 3):
            self.send_and_wait(h, n)
            time.sleep(0.3)
        self.assertEqual(h.sessions, 3, self.diag())
        self.assertNotIn("deferred", self.log())
        self.assertTrue(wait_for(lambda: self.queue_ids() == []),
                        self.diag())

    def test_stopping_runner_quits_kept_connections(self):
        h = self.hop()
        self.send_and_wait(h, 1)
        time.sleep(0.2)
        self.assertEqual(h.quits, [])
        self.stop_runner()
        self.assertTrue(wait_for(lambda: h.quits, 5), self.diag())
        self.assertEqual(h.sessions, 1)


if __name__ == "__main__":
    unittest.main()
