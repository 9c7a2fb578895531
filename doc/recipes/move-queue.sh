#!/bin/sh
# move-queue.sh OLD NEW -- copy the queued mail of a lost node's spool OLD
# into the spool NEW of a live node, whose queue runner then delivers it
# (run "smtpq -C CONF flush" afterwards to make it due at once).
# README.md in this directory, "When a node is lost", explains when.
#
# A message is queue/ID (the message and its envelope), state/ID (which
# recipients are done; without it they would get the message again) and
# hold/ID (held).  Queue ids (arrival time in microseconds and 25 random
# bits) do not collide across nodes, so the files go in beside the live
# node's own; one already there is left alone.  Each file
# is copied into NEW/tmp/ and renamed into place, so the runner never
# sees half a file; queue/ goes last, as that is what makes a message
# visible.  The files get the owner of NEW/queue.
set -eu
if [ $# -ne 2 ]; then
	echo "usage: move-queue.sh old-spool new-spool" >&2
	exit 64
fi
old=$1 new=$2
for d in queue tmp state hold; do
	if [ ! -d "$new/$d" ]; then
		echo "move-queue.sh: $new/$d: not a spool directory" >&2
		exit 66
	fi
done
if [ ! -d "$old/queue" ]; then
	echo "move-queue.sh: $old/queue: not a spool directory" >&2
	exit 66
fi
# Segments left in the journal hold acknowledged messages not yet written
# out as queue files: only smtpd's start-up replay writes them.
for j in "$old"/journal/*.j; do
	if [ -e "$j" ]; then
		echo "move-queue.sh: $old/journal holds segments: start smtpd" \
		    "once on $old first (see README.md)" >&2
		exit 75
	fi
done
owner=$(stat -c %u:%g "$new/queue")
moved=0
for d in state hold queue; do
	[ -d "$old/$d" ] || continue
	for f in "$old/$d"/*; do
		id=${f##*/}
		case $id in
		*.tmp | "*") continue ;;
		esac
		[ -e "$new/$d/$id" ] && continue
		part="$new/tmp/moving.$d.$id"
		cp -p "$f" "$part"
		chown "$owner" "$part"
		mv "$part" "$new/$d/$id"
		[ "$d" = queue ] && moved=$((moved + 1))
	done
done
echo "moved $moved messages from $old to $new"
