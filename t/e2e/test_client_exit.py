"""smtp's exit status for each kind of reply at each phase of the session,
against a small scripted server that says what each row tells it to: the
table in smtp(1) EXIT STATUS, and the contract behind it (0 sent, 65 data
error, 67/68 no such user/host, 69 unavailable, 75 every 4xx and lost
connection, 76 protocol error, 77 authentication refused)."""
import socket
import threading

from clientkit import (ClientCase, smtp, EX_OK, EX_DATAERR, EX_NOUSER,
                       EX_NOHOST, EX_UNAVAILABLE, EX_TEMPFAIL, EX_PROTOCOL,
                       EX_NOPERM)

TIMEOUT = 10


class Scripted:
    """One SMTP session on a loopback port, each reply as the script says
    (keys: greeting, EHLO, HELO, AUTH, MAIL, RCPT, DATA, DOT; RCPT may be
    a list, one reply per recipient), 2xx/354 otherwise.  None for a
    phase hangs up there."""

    def __init__(self, script, auth=False):
        self.script = {k: list(v) if isinstance(v, list) else v
                       for k, v in script.items()}
        self.auth = auth
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(1)
        self.ls.settimeout(TIMEOUT)
        self.port = self.ls.getsockname()[1]
        self.seen = []
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.thread.join(TIMEOUT)
        self.ls.close()

    def addr(self):
        return "127.0.0.1:%d" % self.port

    def reply(self, c, phase, default):
        r = self.script.get(phase, default)
        if isinstance(r, list):
            r = r.pop(0) if r else default
        if r is None:
            return False
        c.sendall(r.encode() + b"\r\n")
        return True

    def serve(self):
        try:
            c, _ = self.ls.accept()
        except OSError:
            return
        c.settimeout(TIMEOUT)
        f = c.makefile("rb")
        try:
            self.session(c, f)
        except OSError:
            pass
        finally:
            f.close()
            c.close()

    def session(self, c, f):
        if not self.reply(c, "greeting", "220 script.test ESMTP"):
            return
        for _ in range(100):
            line = f.readline()
            if not line:
                return
            verb = line.split(b" ", 1)[0].strip().upper().decode()
            self.seen.append(verb)
            if verb == "EHLO":
                ext = "250-script.test\r\n250-8BITMIME\r\n"
                if self.auth:
                    ext += "250-AUTH PLAIN\r\n"
                r = self.script.get("EHLO", ext + "250 SIZE 1000000")
                if r is None:
                    return
                c.sendall(r.encode() + b"\r\n")
            elif verb in ("HELO", "MAIL", "RCPT"):
                d = "250 2.1.0 ok" if verb != "HELO" else "250 script.test"
                if not self.reply(c, verb, d):
                    return
            elif verb == "AUTH":
                if not self.reply(c, "AUTH", "235 2.7.0 ok"):
                    return
            elif verb == "DATA":
                r = self.script.get("DATA", "354 go ahead")
                if r is None:
                    return
                c.sendall(r.encode() + b"\r\n")
                if not r.startswith("354"):
                    continue
                while True:
                    d = f.readline()
                    if not d or d == b".\r\n":
                        break
                if not self.reply(c, "DOT", "250 2.0.0 queued"):
                    return
            elif verb == "QUIT":
                c.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                c.sendall(b"250 2.0.0 ok\r\n")


# (phase, reply, exit status); the phase's reply, all else going well.
TABLE = [
    # The greeting.
    ("greeting", "554 5.7.1 no service for you", EX_UNAVAILABLE),
    ("greeting", "521 5.3.2 this host takes no mail", EX_UNAVAILABLE),
    ("greeting", "421 4.3.2 busy", EX_TEMPFAIL),
    ("greeting", "354 out of turn", EX_PROTOCOL),
    ("greeting", "hello there", EX_PROTOCOL),
    ("greeting", None, EX_TEMPFAIL),
    # EHLO (and the HELO it falls back to on a 5xx).
    ("EHLO", "421 4.7.0 come back later", EX_TEMPFAIL),
    ("EHLO", None, EX_TEMPFAIL),
    # AUTH (smtp -a).
    ("AUTH", "535 5.7.8 bad credentials", EX_NOPERM),
    ("AUTH", "534 5.7.9 mechanism too weak", EX_NOPERM),
    ("AUTH", "504 5.5.4 unrecognised mechanism", EX_NOPERM),
    ("AUTH", "454 4.7.0 temporary authentication failure", EX_TEMPFAIL),
    ("AUTH", "354 out of turn", EX_PROTOCOL),
    # MAIL: the sender.
    ("MAIL", "553 5.1.8 sender domain does not exist", EX_DATAERR),
    ("MAIL", "550 5.1.1 sender unknown", EX_DATAERR),
    ("MAIL", "550 5.2.1 sender mailbox disabled", EX_DATAERR),
    ("MAIL", "552 5.3.4 message too big", EX_DATAERR),
    ("MAIL", "553 sender refused", EX_DATAERR),
    ("MAIL", "530 5.7.0 authentication required", EX_NOPERM),
    ("MAIL", "550 5.7.1 sender blocked by policy", EX_UNAVAILABLE),
    ("MAIL", "500 5.5.1 command unrecognised", EX_PROTOCOL),
    ("MAIL", "451 4.3.0 try again later", EX_TEMPFAIL),
    ("MAIL", "421 4.4.5 shutting down", EX_TEMPFAIL),
    ("MAIL", "354 out of turn", EX_PROTOCOL),
    ("MAIL", None, EX_TEMPFAIL),
    # RCPT: the recipient.
    ("RCPT", "550 5.1.1 no such user", EX_NOUSER),
    ("RCPT", "550 no such user here", EX_NOUSER),
    ("RCPT", "551 5.1.6 user has moved", EX_NOUSER),
    ("RCPT", "550 5.1.2 no such domain", EX_NOHOST),
    ("RCPT", "550 5.7.1 relaying denied", EX_UNAVAILABLE),
    ("RCPT", "552 5.2.2 mailbox full", EX_UNAVAILABLE),
    ("RCPT", "501 5.5.4 bad parameters", EX_PROTOCOL),
    ("RCPT", "450 4.2.0 greylisted", EX_TEMPFAIL),
    ("RCPT", "452 4.5.3 too many recipients", EX_TEMPFAIL),
    ("RCPT", "354 out of turn", EX_PROTOCOL),
    # DATA.
    ("DATA", "554 5.5.1 no valid recipients", EX_PROTOCOL),
    ("DATA", "554 transaction failed", EX_DATAERR),
    ("DATA", "550 5.7.1 not from you", EX_UNAVAILABLE),
    ("DATA", "451 4.3.0 try again later", EX_TEMPFAIL),
    ("DATA", "250 2.0.0 not an invitation", EX_PROTOCOL),
    ("DATA", None, EX_TEMPFAIL),
    # After the data.
    ("DOT", "554 5.6.0 content rejected", EX_DATAERR),
    ("DOT", "552 5.3.4 message too big", EX_DATAERR),
    ("DOT", "550 5.7.1 looks like spam", EX_UNAVAILABLE),
    ("DOT", "550 5.1.1 no such user after all", EX_NOUSER),
    ("DOT", "451 4.3.0 disk full", EX_TEMPFAIL),
    ("DOT", "354 out of turn", EX_PROTOCOL),
    ("DOT", None, EX_TEMPFAIL),
    ("DOT", "250 2.0.0 queued", EX_OK),
]


class ExitStatus(ClientCase):
    PREFIX = "client-exit-"

    def run_row(self, script, auth=False, rcpts=("b@x.test",)):
        args = ["-o", "command_timeout=5", "-o", "data_timeout=5"]
        if auth:
            args += ["-a", "-u", "alice", "-o", "auth_cleartext=yes",
                     "-o", "password_command=echo secret"]
        with Scripted(script, auth=auth) as s:
            p = smtp(args + [s.addr(), "a@x.test"] + list(rcpts),
                     home=self.workdir)
        return p

    def check(self, rows):
        """Runs (script, want, kw) rows; one failure lists every row
        that went wrong, as "got X, want Y"."""
        bad = []
        for script, want, kw in rows:
            p = self.run_row(script, **kw)
            err = p.stderr.decode()
            # One line for a failure (one per recipient when they differ).
            lines = 0 if want == EX_OK else 1
            if p.returncode != want or ("rcpts" not in kw and
                                        err.count("\n") != lines):
                bad.append("%r: got %d, want %d; stderr: %s" %
                           (script, p.returncode, want, err))
        self.assertFalse(bad, "\n".join(bad))

    def test_table(self):
        rows = []
        for phase, reply, want in TABLE:
            rows.append(({phase: reply}, want, {"auth": phase == "AUTH"}))
        self.check(rows)

    def test_ehlo_and_helo_refused(self):
        self.check([({"EHLO": r, "HELO": r}, want, {}) for r, want in (
            ("550 5.7.1 go away", EX_UNAVAILABLE),
            ("502 5.5.1 not here", EX_PROTOCOL),
            ("554 no SMTP service", EX_UNAVAILABLE))])

    def test_recipients_faring_differently(self):
        """A permanent refusal outranks a temporary one (retrying the
        whole message would send it again to those who have it); only
        temporary refusals give 75."""
        two = {"rcpts": ("b@x.test", "c@x.test")}
        rows = []
        for replies, want in ((["450 4.2.0 later", "550 5.1.1 no"],
                               EX_NOUSER),
                              (["250 2.1.5 ok", "450 4.2.0 later"],
                               EX_TEMPFAIL),
                              (["250 2.1.5 ok", "550 5.1.2 no domain"],
                               EX_NOHOST)):
            rows.append(({"RCPT": replies}, want, two))
        self.check(rows)


if __name__ == "__main__":
    import unittest
    unittest.main()
