"""One owner per output: a lock file next to it, created only if absent, with a heartbeat.

Before it stages anything, a run creates ``<parent>/.<name>.pool3-lock`` with
:func:`pool3.storage.fs.create_new` (create-if-absent), holding a JSON :class:`Owner`: a
random token, host, pid (with the machine's boot id and pid namespace, and the pid's start
time, so that a pid is only compared where it means the same process), command, run id and
start time. While the run lives a thread renews its heartbeat every tenth of
``output.lock_timeout_seconds``: it creates ``.<name>.pool3-beat-<token>-<ms>`` (the time
is in the name, so others only list the folder), then deletes the previous one.

Another run that finds the lock treats its owner as gone only when that is provable: on
the same host its process has ended (or is a zombie, or the pid now belongs to another
process); elsewhere its newest heartbeat is older than the timeout (hosts' clocks must
agree to well within it). A live owner makes the second run fail with :class:`OutputBusy`
(exit 4) naming the holder. A gone owner's lock is moved aside (never replacing a newer
one), checked to be the one judged, and deleted; the new owner then removes every staging,
trash and heartbeat entry of other tokens (see :mod:`pool3.storage.outputs`). Before the
final swap the owner checks it still holds the lock (:meth:`OutputLock.held`).

Size (over ~300 lines): the lock's protocol (take, heartbeat, judge a holder, take over,
release) is one state machine over one folder; its steps are kept together.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass

from pyspark.sql import SparkSession

from pool3.errors import OutputError
from pool3.storage.fs import (
    FS_ERRORS,
    create_new,
    delete,
    join,
    list_names,
    modified_ms,
    read_text,
    rename_new,
)
from pool3.storage.manifest import utc_now

log = logging.getLogger(__name__)

#: Entries next to an output ``name`` that belong to the run holding token ``t``.
OWNED_KINDS = ("staging", "trash", "beat", "stale")
ATTEMPTS = 4
#: Locks this process holds (so a SIGTERM handler can release them: see pool3.cli).
HELD: set[OutputLock] = set()


class OutputBusy(OutputError):
    """Another live run owns the output (exit 4, as every output refusal)."""


def owned_name(name: str, kind: str, token: str) -> str:
    """``.<name>.pool3-<kind>-<token>``: an entry next to output ``name`` owned by ``token``."""
    return f".{name}.pool3-{kind}-{token}"


def token_of(name: str, entry: str) -> str | None:
    """The owner token of a sibling ``entry`` of output ``name``, or None if not pool3's."""
    for kind in OWNED_KINDS:
        prefix = f".{name}.pool3-{kind}-"
        if entry.startswith(prefix):
            return entry[len(prefix) :].split("-")[0] or None
    return None


_RUN_ENTRY = re.compile(r"\..+\.pool3-(lock|(staging|trash|beat|stale)-[0-9a-f].*)")


def is_run_entry(name: str) -> bool:
    """Whether ``name`` is a lock, heartbeat, staging or trash entry of some pool3 output."""
    return _RUN_ENTRY.fullmatch(name) is not None


def _pid_start(pid: int) -> str | None:
    """Start time of ``pid`` (``/proc/<pid>/stat`` field 22), None where unknown; "Z" for a
    zombie (ended, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return "Z" if fields[0] in ("Z", "X") else fields[19]


def process_space() -> str | None:
    """This machine's boot id and this process's pid namespace: two processes whose pids can
    be compared share both (two containers with one host name do not). None off Linux."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as boot:
            return f"{boot.read().strip()}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return None


@dataclass(frozen=True)
class Owner:
    """Who holds a lock, as stored in it."""

    token: str
    host: str
    space: str | None
    pid: int
    pid_start: str | None
    command: str
    run_id: str | None
    started_at: str
    started_ms: int

    @classmethod
    def me(cls, command: str, run_id: str | None) -> Owner:
        pid = os.getpid()
        now = utc_now()
        return cls(
            uuid.uuid4().hex[:16],
            socket.gethostname(),
            process_space(),
            pid,
            _pid_start(pid),
            command,
            run_id,
            now,
            int(time.time() * 1000),
        )

    def describe(self) -> str:
        run = f" (run id {self.run_id})" if self.run_id else ""
        return f"pool3 {self.command}{run}, pid {self.pid} on {self.host}, since {self.started_at}"

    def local(self) -> bool:
        """Whether this owner's pid is one of this machine's (same host, boot, pid namespace)."""
        return (
            self.host == socket.gethostname()
            and self.space is not None
            and self.space == process_space()
        )

    def gone_on_this_host(self) -> str | None:
        """Why this owner's process provably ended, if it ran on this host."""
        if not self.local():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return f"its process {self.pid} on this host has ended"
        except PermissionError:
            pass  # alive, another user's
        start = _pid_start(self.pid)
        if start == "Z":
            return f"its process {self.pid} on this host has ended"
        if start is not None and self.pid_start is not None and start != self.pid_start:
            return f"pid {self.pid} on this host is now another process"
        return None


def _parse(text: str) -> Owner | None:
    try:
        doc = json.loads(text)
        return Owner(**{k: doc[k] for k in Owner.__dataclass_fields__})
    except (ValueError, KeyError, TypeError):
        return None


class OutputLock:
    """The lock of output ``name`` under ``parent``; :meth:`acquire` it, then :meth:`release`."""

    def __init__(
        self, spark: SparkSession | None, parent: str, name: str, owner: Owner, *, timeout_s: float
    ) -> None:
        self.spark, self.parent, self.name, self.owner = spark, parent, name, owner
        self.timeout_s = timeout_s
        self.path = join(parent, f".{name}.pool3-lock")
        self._beat: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading the lock ---------------------------------------------------------------
    def _holder(self, path: str | None = None) -> tuple[Owner | None, bool]:
        """(owner in the lock file, whether a file is there)."""
        try:
            return _parse(read_text(self.spark, path or self.path)), True
        except FS_ERRORS:
            return None, False

    def _beat_prefix(self, token: str) -> str:
        """Heartbeat files of ``token`` are named this, then the time in ms."""
        return owned_name(self.name, "beat", token) + "-"

    def last_beat_ms(self, owner: Owner) -> int:
        prefix = self._beat_prefix(owner.token)
        times = [owner.started_ms]
        for entry in list_names(self.spark, self.parent):
            if entry.startswith(prefix) and entry[len(prefix) :].isdigit():
                times.append(int(entry[len(prefix) :]))
        return max(times)

    def gone(self, owner: Owner) -> str | None:
        """Why ``owner`` is provably gone, or None while it may be alive."""
        ended = owner.gone_on_this_host()
        if ended or (owner.local() and owner.pid_start is not None):
            return ended  # a live local process is never taken for dead
        age = time.time() - self.last_beat_ms(owner) / 1000
        if age > self.timeout_s:
            return (
                f"its last heartbeat was {age:.0f} s ago, more than "
                f"output.lock_timeout_seconds={self.timeout_s:g}"
            )
        return None

    def held(self) -> bool:
        """Whether the lock file still holds this run's token."""
        holder, _ = self._holder()
        return holder is not None and holder.token == self.owner.token

    # -- taking and leaving it ----------------------------------------------------------
    def acquire(self) -> None:
        """Take the lock, or raise :class:`OutputBusy` naming the live holder."""
        text = json.dumps(asdict(self.owner), sort_keys=True).encode("utf-8")
        holder: Owner | None = None
        for attempt in range(ATTEMPTS):
            if create_new(self.spark, self.path, text):
                HELD.add(self)
                try:
                    if self.held():  # where create-if-absent is not atomic, last writer wins
                        self._start()
                        return
                except BaseException:
                    self.release()
                    raise
                HELD.discard(self)
                holder = self._holder()[0]
                break
            holder, present = self._holder()
            if not present:
                continue  # released meanwhile: try again
            if holder is None:  # being written by its creator, or garbage
                try:
                    age = time.time() - modified_ms(self.spark, self.path) / 1000
                except FS_ERRORS:
                    continue  # released meanwhile
                if age <= self.timeout_s:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                self._take_over(None, f"it is unreadable and {age:.0f} s old")
                continue
            why = self.gone(holder)
            if why is None:
                break
            self._take_over(holder, why)
        raise OutputBusy(
            f"output {join(self.parent, self.name)} is being written by "
            f"{holder.describe() if holder else 'another run'} (lock {self.path}); wait for "
            "it to finish, or if that run is dead on another host, for its heartbeat to be "
            "older than output.lock_timeout_seconds (then the next run takes over)"
        )

    def _take_over(self, judged: Owner | None, why: str) -> None:
        """Move a dead owner's lock aside, check it is the one judged, delete it."""
        aside = join(self.parent, owned_name(self.name, "stale", self.owner.token))
        try:
            if not rename_new(self.spark, self.path, aside):
                return
        except FS_ERRORS:
            return  # gone meanwhile, or taken over by another run
        moved = self._holder(aside)[0]
        if judged is not None and (moved is None or moved.token != judged.token):
            # a new owner took the lock between our read and our move: give it back
            if not rename_new(self.spark, aside, self.path):
                log.warning("could not put back the lock of %s", moved and moved.describe())
            return
        log.warning(
            "taking over output %s from %s: %s",
            join(self.parent, self.name),
            judged.describe() if judged else "an unreadable lock",
            why,
        )
        delete(self.spark, aside, recursive=False)

    def _renew(self) -> None:
        stamp = f"{int(time.time() * 1000):013d}"
        beat = join(self.parent, self._beat_prefix(self.owner.token) + stamp)
        create_new(self.spark, beat, b"")
        if self._beat is not None:
            delete(self.spark, self._beat, recursive=False)
        self._beat = beat

    def _start(self) -> None:
        self._renew()
        interval = max(1.0, self.timeout_s / 10)

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self._renew()
                except Exception as err:
                    log.warning("heartbeat of %s failed: %s", self.path, err)

        self._thread = threading.Thread(target=loop, name="pool3-heartbeat", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop the heartbeat and delete this run's lock and heartbeat (best effort; safe to
        call again)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        try:
            if self._beat is not None:
                delete(self.spark, self._beat, recursive=False)
                self._beat = None
            if self in HELD and self.held():
                delete(self.spark, self.path, recursive=False)
        except FS_ERRORS as err:
            log.warning("could not release the lock %s: %s", self.path, err)
        HELD.discard(self)
        self._thread = None
