"""Maildir delivery as root into directories that users control: nothing
is ever written, made or given away through a symbolic link, a Maildir
that belongs to someone else is refused, and the files belong to the
Maildir's user.  The refused deliveries wait in the queue with the reason
in the log and in smtpq show."""
import os
import pwd
import shutil
import subprocess

from qharness import SMTPQ, QueueCase, maildir_files, wait_for

FAST = "retry_min = 1; retry_max = 2; scan_interval = 1;"
USER = "nobody"
OTHER = "daemon"


class MaildirSafety(QueueCase):
    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("needs root")
        self.uid = pwd.getpwnam(USER).pw_uid
        self.gid = pwd.getpwnam(USER).pw_gid
        # Where an attacker would like root to write: root's only.
        self.secret = self.path("secret")
        os.makedirs(self.secret)
        os.chmod(self.secret, 0o700)

    def route(self, create="true"):
        return ('{ domain = "example.com"; action = "maildir"; catchall = true; '
                'path = "%s/%%d/%%u"; create = %s; user = "%s"; }'
                % (self.path("mail"), create, USER))

    def box(self, user="bob"):
        return self.path("mail", "example.com", user)

    def own(self, path, uid=None, gid=None):
        os.lchown(path, self.uid if uid is None else uid,
                  self.gid if gid is None else gid)

    def make_box(self, subs=("tmp", "new", "cur")):
        """bob's Maildir as its user would have it."""
        os.makedirs(self.box(), 0o700)
        self.own(self.path("mail", "example.com"), 0, 0)
        self.own(self.box())
        for s in subs:
            os.mkdir(os.path.join(self.box(), s), 0o700)
            self.own(os.path.join(self.box(), s))

    def send_one(self):
        self.send("alice@example.org", ["bob@example.com"],
                  b"Subject: planted\r\n\r\nwritten where it must not be\r\n")
        ids = self.queue_ids()
        self.assertEqual(len(ids), 1)
        return ids[0]

    def assert_refused(self, qid, why, secret_subs=False):
        """Deferred, not bounced; nothing in the secret directory."""
        self.deliver()
        self.assertEqual(self.queue_ids(), [qid], self.diag())
        if secret_subs:
            for s in ("tmp", "new", "cur"):
                self.assertEqual(os.listdir(os.path.join(self.secret, s)),
                                 [])
        else:
            self.assertEqual(os.listdir(self.secret), [])
        log = self.log()
        self.assertIn("queue deferred to=<bob@example.com>", log)
        self.assertIn(why, log)
        self.assertIn(why, self.smtpq("show", qid).stdout)

    def test_delivery_belongs_to_the_user(self):
        self.setup_queue(self.route(), queue=FAST)
        self.send_one()
        self.deliver()
        files = wait_for(lambda: maildir_files(self.box()))
        self.assertEqual(len(files), 1, self.diag())
        self.assertEqual(os.stat(files[0]).st_uid, self.uid)
        for d in ("", "tmp", "new", "cur"):
            st = os.lstat(os.path.join(self.box(), d))
            self.assertEqual((st.st_uid, st.st_mode & 0o777),
                             (self.uid, 0o700), d)
        # The parents made on the way are root's.
        self.assertEqual(os.stat(self.path("mail", "example.com")).st_uid, 0)
        self.assertTrue(wait_for(lambda: self.queue_ids() == []))

    def test_delivery_killed_while_making_the_maildir(self):
        """A runner killed (kill -9) in the middle of making a new Maildir
        leaves none half made or not yet its user's: the next run delivers,
        and removes the directory the killed one was building.  strace
        kills smtpq run at its first change of an owner."""
        strace = shutil.which("strace")
        if strace is None:
            self.skipTest("needs strace")
        self.setup_queue(self.route(), queue=FAST)
        qid = self.send_one()
        self.d.settle()
        p = subprocess.run([strace, "-f", "-qq", "-o", os.devnull, "-e",
                            "trace=chown,fchown,fchownat,lchown",
                            "-e", "inject=chown,fchown,fchownat,lchown:"
                            "signal=KILL:when=1",
                            SMTPQ, "-C", self.qconf, "run", "-o"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0, "strace did not stop it")
        self.assertEqual(self.queue_ids(), [qid])
        # The runner's lock goes with its last process.
        self.assertTrue(wait_for(self.lock_free, 10))
        self.deliver()
        files = wait_for(lambda: maildir_files(self.box()))
        self.assertEqual(len(files), 1, self.diag())
        for d in ("", "tmp", "new", "cur"):
            st = os.lstat(os.path.join(self.box(), d))
            self.assertEqual((st.st_uid, st.st_mode & 0o777),
                             (self.uid, 0o700), d)
        # What the killed run was building is gone, not left beside it.
        parent = os.path.dirname(self.box().rstrip("/"))
        self.assertEqual([n for n in os.listdir(parent)
                          if n.startswith(".maildir-")], [])
        self.assertIn("left by a delivery that was killed", self.log())

    def test_new_as_a_symlink(self):
        self.setup_queue(self.route(), queue=FAST)
        self.make_box(("tmp", "cur"))
        os.symlink(self.secret, os.path.join(self.box(), "new"))
        qid = self.send_one()
        self.assert_refused(qid, "new/ is a symbolic link or not a directory")

    def test_tmp_as_a_symlink(self):
        self.setup_queue(self.route(), queue=FAST)
        self.make_box(("new", "cur"))
        os.symlink(self.secret, os.path.join(self.box(), "tmp"))
        qid = self.send_one()
        self.assert_refused(qid, "tmp/ is a symbolic link or not a directory")
        self.assertEqual(os.listdir(os.path.join(self.box(), "new")), [])

    def test_maildir_as_a_symlink(self):
        self.setup_queue(self.route(), queue=FAST)
        os.makedirs(self.path("mail", "example.com"))
        # Even to a directory of the user's own.
        for s in ("tmp", "new", "cur"):
            os.mkdir(os.path.join(self.secret, s))
            self.own(os.path.join(self.secret, s))
        self.own(self.secret)
        os.symlink(self.secret, self.box())
        qid = self.send_one()
        self.assert_refused(qid, '"bob" is a symbolic link', True)

    def test_component_below_the_base_as_a_symlink(self):
        self.setup_queue(self.route(), queue=FAST)
        os.makedirs(self.path("mail"))
        os.symlink(self.secret, self.path("mail", "example.com"))
        qid = self.send_one()
        # With create = true, not even a directory is made through it.
        self.assert_refused(qid, '"example.com" is a symbolic link')

    def test_maildir_of_another_user(self):
        self.setup_queue(self.route(), queue=FAST)
        self.make_box()
        other = pwd.getpwnam(OTHER)
        self.own(self.box(), other.pw_uid, other.pw_gid)
        qid = self.send_one()
        self.assert_refused(qid, "it belongs to uid %d, not to %s"
                            % (other.pw_uid, USER))
        self.assertEqual(maildir_files(self.box()), [])

    def test_subdirectory_of_another_user(self):
        self.setup_queue(self.route(), queue=FAST)
        self.make_box()
        self.own(os.path.join(self.box(), "new"), 0, 0)
        os.chmod(os.path.join(self.box(), "new"), 0o755)
        qid = self.send_one()
        self.assert_refused(qid, "new/ belongs to uid 0, not %d" % self.uid)
