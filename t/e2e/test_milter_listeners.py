"""Milters per listener: a milter with a name, and a listen group's
milters = [ ... ] naming the ones its sessions use, in that order, or []
for none; a listener without the key uses every milter.  Two milters
written in the test tag the message with a header field of their own, so
the queued message shows which ones saw it; smtpd -t prints each
listener's milters and refuses unknown or repeated names with file:line."""
import os
import signal
import subprocess
import time

from harness import SMTPD, PolicyCase, free_port, parse_spool
from test_milter import BASE, Milter, packet

MSG = (b"From: alice@example.com\r\nTo: bob@ours.example\r\n"
       b"Subject: per listener\r\n\r\nbody\r\n.\r\n")


def tagger(field):
    """A milter script adding field: yes at the end of the message."""
    def script(cmd, data, m):
        if cmd == b"E":
            return [packet(b"h", field + b"\0yes\0"), packet(b"c")]
        return None
    return script


class MilterListeners(PolicyCase):

    def milter(self, script):
        m = Milter(script)
        self.addCleanup(m.close)
        return m

    def listen(self, entries):
        """A listen list of (port key, milters or None for no key)."""
        return "listen = (\n%s );\n" % ",\n".join(
            ' "127.0.0.1:%d"' % self.ports[k] if names is None else
            ' { address = "127.0.0.1:%d"; milters = [ %s ]; }' % (
                self.ports[k], ", ".join('"%s"' % n for n in names))
            for k, names in entries)

    def daemon(self):
        """Listeners: a (milter A), b (milter B), none (milters = []),
        ba (B then A) and all (no milters key: A then B)."""
        ma = self.milter(tagger(b"X-Milter-A"))
        mb = self.milter(tagger(b"X-Milter-B"))
        self.ports = dict((k, free_port())
                          for k in ("a", "b", "none", "ba", "all"))
        p = self.ports
        self.listen_conf = self.listen(
            (("a", ["A"]), ("b", ["B"]), ("none", []), ("ba", ["B", "A"]),
             ("all", None)))
        conf = (BASE +
                'milters = (\n'
                ' { name = "A"; address = "inet:127.0.0.1:%d"; '
                'timeout = "5s"; },\n'
                ' { name = "B"; address = "inet:127.0.0.1:%d"; '
                'timeout = "5s"; } );\n' % (ma.port, mb.port) +
                self.listen_conf)
        d = self.smtpd(listen=[], config_extra=conf, start=False,
                       limits={"tarpit_delay": 0, "errors": 1000})
        d.port = p["a"]
        d.more_ports = [p[k] for k in ("b", "none", "ba", "all")]
        return d.start(), ma, mb

    def ended(self, m, secs=10):
        """True once every session milter m was told of has had its
        QUIT (the session ends after the client's QUIT has its reply)."""
        deadline = time.time() + secs
        while time.time() < deadline:
            cmds = m.commands()
            if cmds.count(b"Q") == cmds.count(b"C"):
                return True
            time.sleep(0.02)
        return False

    def send_on(self, d, port):
        """The message through listener port; its queued header."""
        d.port = port
        c = self.client(d)
        self.start_mail(c, "<alice@example.com>", ["<bob@ours.example>"])
        qid = self.queued_id(self.send_data(c, MSG))
        c.cmd("QUIT")
        env, body = parse_spool(self.spooled(d, qid))
        return body.split(b"\r\n\r\n", 1)[0] + b"\r\n"

    def test_each_listener_its_milters(self):
        """Each listener's message carries the fields of its milters
        only, in its order; milters = [] leaves it untouched, and no
        milter hears of the sessions it does not serve."""
        d, ma, mb = self.daemon()
        p = self.ports
        hdr = self.send_on(d, p["a"])
        self.assertIn(b"\r\nX-Milter-A: yes\r\n", hdr)
        self.assertNotIn(b"X-Milter-B", hdr)
        self.assertEqual(mb.commands(), [])

        hdr = self.send_on(d, p["b"])
        self.assertIn(b"\r\nX-Milter-B: yes\r\n", hdr)
        self.assertNotIn(b"X-Milter-A", hdr)

        # The sessions' milter QUITs may still be on their way.
        for m in (ma, mb):
            self.assertTrue(self.ended(m), m.commands())
        seen_a, seen_b = len(ma.seen), len(mb.seen)
        hdr = self.send_on(d, p["none"])
        self.assertNotIn(b"X-Milter", hdr)
        self.assertEqual((len(ma.seen), len(mb.seen)), (seen_a, seen_b))

        hdr = self.send_on(d, p["ba"])
        self.assertTrue(hdr.endswith(b"\r\nX-Milter-B: yes\r\n"
                                     b"X-Milter-A: yes\r\n"), hdr)
        hdr = self.send_on(d, p["all"])
        self.assertTrue(hdr.endswith(b"\r\nX-Milter-A: yes\r\n"
                                     b"X-Milter-B: yes\r\n"), hdr)

    def test_reload(self):
        """SIGHUP gives new sessions the listener's new milters, found by
        address when the list moved it: a and b swapped places and
        milters, so a now tags with B and b with A."""
        d, ma, mb = self.daemon()
        with open(d.conf) as f:
            text = f.read()
        self.assertIn(self.listen_conf, text)
        with open(d.conf, "w") as f:
            f.write(text.replace(self.listen_conf, self.listen(
                (("b", ["A"]), ("a", ["B"]), ("none", []),
                 ("ba", ["B", "A"]), ("all", None)))))
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "reloaded " not in d.logtext() and time.time() < deadline:
            time.sleep(0.02)
        self.assertIn("reloaded ", d.logtext())
        hdr = self.send_on(d, self.ports["a"])
        self.assertIn(b"\r\nX-Milter-B: yes\r\n", hdr)
        self.assertNotIn(b"X-Milter-A", hdr)
        hdr = self.send_on(d, self.ports["b"])
        self.assertIn(b"\r\nX-Milter-A: yes\r\n", hdr)
        self.assertNotIn(b"X-Milter-B", hdr)

    def test_print(self):
        """smtpd -t names each listener's milters, and the milters'
        names."""
        d, ma, mb = self.daemon()
        p = self.ports
        r = subprocess.run([SMTPD, "-t", "-C", d.conf], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        for port, what in ((p["a"], "milters: A"), (p["b"], "milters: B"),
                           (p["none"], "milters: none"),
                           (p["ba"], "milters: B, A"),
                           (p["all"], "milters: all 2 of milters")):
            line = [x for x in r.stdout.splitlines()
                    if x.startswith("listen: 127.0.0.1:%d " % port)]
            self.assertEqual(len(line), 1, r.stdout)
            self.assertTrue(line[0].endswith("; " + what), line[0])
        self.assertIn('Milter inet:127.0.0.1:%d name "A": ' % ma.port,
                      r.stdout)

    def test_config_errors(self):
        """Unknown and repeated names are refused with the file:line of
        the entry; so are a bad or repeated milter name."""
        m = ('milters = (\n'
             ' { name = "dkim"; address = "inet:127.0.0.1:8891"; },\n'
             ' { name = "rspamd"; address = "inet:127.0.0.1:11332"; } );\n')
        for conf, line, msg in (
                (m + 'listen = ( { address = "127.0.0.1:2525";\n'
                 '  milters = [ "dkim",\n  "spamd" ]; } );\n', 6,
                 'listener 127.0.0.1:2525: no milter named "spamd"'),
                (m + 'listen = ( { address = "127.0.0.1:2525";\n'
                 '  milters = [ "dkim", "rspamd",\n  "dkim" ]; } );\n', 6,
                 'listener 127.0.0.1:2525: a second milter "dkim"'),
                ('listen = ( { address = "127.0.0.1:2525";\n'
                 '  milters = [ "dkim" ]; } );\n', 2,
                 'no milter named "dkim"'),
                ('milters = (\n { name = "x"; address = "inet:h:1"; },\n'
                 ' { name = "x"; address = "inet:h:2"; } );\n', 3,
                 'two milters named "x"'),
                ('milters = (\n { name = "a b"; address = "inet:h:1"; } );\n',
                 2, "name must be 1 to 32 letters"),
                ('listen = ( { address = "127.0.0.1:2525";\n'
                 '  milters = "dkim,rspamd"; } );\n', 0,
                 'no milter named "dkim,rspamd"')):
            path = os.path.join(self.workdir, "bad.conf")
            with open(path, "w") as f:
                f.write(conf)
            r = subprocess.run([SMTPD, "-t", "-C", path],
                               capture_output=True, text=True, timeout=20)
            self.assertEqual(r.returncode, 78, r.stdout + r.stderr)
            self.assertIn(msg, r.stderr)
            if line:
                self.assertIn("bad.conf:%d: " % line, r.stderr)
