"""The store lock: one writing command at a time per store (docs/store.md, "Writers").

The lock is a JSON object at `LOCK_KEY` under the store root that names its owner (host, pid, command),
when it was taken and when it expires. It is created atomically (`store.create_file`: a conditional PUT
on S3, an exclusive create locally), so of two writers exactly one gets it and the other fails at once
with `StoreLockedError`. A lock is taken over by the next writer once it has expired, or at once when its
owner ran on the same machine (same kernel and PID namespace) and its process has ended (a writer that was
killed). Whoever removes a lock (its owner on release, a writer taking it over) first claims
`<LOCK_KEY>.<token>.release` the same atomic way: only one process ever removes a given lock, and never a
newer one that replaced it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dlens.common.config import get_settings
from dlens.common.logging import get_logger
from dlens.common.store import absolute_url, create_file, delete_file, is_s3, read_file

log = get_logger(__name__)

LOCK_KEY = "dlens.lock"
#: Attempts to take the lock while other writers are taking over an expired one, and the pause between.
_ATTEMPTS, _PAUSE_S = 5, 0.2


class StoreLockedError(RuntimeError):
    """Another writer holds the store's lock."""


@dataclass(frozen=True)
class LockInfo:
    """Who holds a store's lock and until when (UTC); `token` tells one taking of the lock from another,
    `pid_namespace` where its pid means something (see `_pid_namespace`)."""

    token: str
    host: str
    pid: int
    pid_namespace: str
    command: str
    created: datetime
    expires: datetime

    @classmethod
    def new(cls, command: str, expiry: timedelta) -> LockInfo:
        now = datetime.now(UTC).replace(microsecond=0)
        return cls(
            uuid.uuid4().hex, socket.gethostname(), os.getpid(), _pid_namespace(), command, now, now + expiry
        )

    def to_json(self) -> bytes:
        fields = asdict(self) | {"created": _iso(self.created), "expires": _iso(self.expires)}
        return json.dumps(fields, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LockInfo:
        fields = json.loads(data)
        return cls(
            str(fields["token"]), str(fields["host"]), int(fields["pid"]), str(fields["pid_namespace"]),
            str(fields["command"]), datetime.fromisoformat(fields["created"]),
            datetime.fromisoformat(fields["expires"]),
        )  # fmt: skip

    @property
    def expired(self) -> bool:
        return datetime.now(UTC) >= self.expires

    @property
    def owner_gone(self) -> bool:
        """True when the owner ran in this process's PID namespace and no process has its pid any more."""
        if not self.pid_namespace or self.pid_namespace != _pid_namespace():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            pass
        return False

    def describe(self) -> str:
        return (
            f"{self.host} pid {self.pid} ({self.command}) since {_iso(self.created)}, "
            f"{'expired' if self.expired else 'expires'} {_iso(self.expires)}"
        )


def _pid_namespace() -> str:
    """This process's PID namespace on this running kernel (boot id and namespace inode: the pids of one
    are the pids of another only when both are equal); empty where /proc does not say."""
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot_id}:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def invocation(program: str, argv: list[str] | None = None) -> str:
    """The command line a lock names as its owner: `program` and its arguments (default: this process's)."""
    return shlex.join([program, *(sys.argv[1:] if argv is None else argv)])


def read_lock(url: str) -> LockInfo | None:
    """The store's lock, or None when nobody holds it; ValueError when it is not a lock of ours."""
    try:
        data = read_file(url, LOCK_KEY)
    except FileNotFoundError:
        return None
    try:
        return LockInfo.from_json(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"store {url}: {LOCK_KEY} is not a readable lock ({exc}); `dlens-ingest unlock --store {url}` "
            "removes it"
        ) from None


def acquire(url: str, command: str, expiry: timedelta | None = None) -> LockInfo:
    """Take the store's lock for `command`, taking over an expired one or one whose owner is gone;
    StoreLockedError when another writer holds it."""
    if expiry is None:
        expiry = timedelta(hours=get_settings().lock_expiry_hours)
    mine = LockInfo.new(command, expiry)
    for _ in range(_ATTEMPTS):
        if create_file(url, LOCK_KEY, mine.to_json()):
            return mine
        held = read_lock(url)
        if held is None:
            continue  # released meanwhile
        if not (held.expired or held.owner_gone):
            raise StoreLockedError(
                f"store {url} is locked by another writer: {held.describe()}; wait for it to end (an "
                f"expired lock is taken over), or if that process is gone: dlens-ingest unlock --store {url}"
            )
        if _remove(url, held):
            reason = "expired" if held.expired else "its process has ended"
            log.warning("store %s: removed the lock of %s (%s)", url, held.describe(), reason)
        else:
            time.sleep(_PAUSE_S)  # another writer is taking it over: see who gets it
    raise StoreLockedError(f"store {url}: other writers are taking its lock at the same time; try again")


def release(url: str, mine: LockInfo) -> None:
    """Give the lock back; a lock that expired and was taken over by another writer is left to it."""
    if not _remove(url, mine):
        log.warning(
            "store %s: this command's lock (expiring %s) was taken over or removed while it ran: another "
            "writer may have written too; check the store with dlens-ingest validate",
            url,
            _iso(mine.expires),
        )


def _remove(url: str, lock: LockInfo) -> bool:
    """Remove `lock` if it is still the store's lock; True when this call removed it."""
    claim = f"{LOCK_KEY}.{lock.token}.release"
    if not create_file(url, claim, b""):
        return False  # another process is removing this very lock
    try:
        current = read_lock(url)
        if current is None or current.token != lock.token:
            return False
        delete_file(url, LOCK_KEY)
        return True
    finally:
        delete_file(url, claim)


def break_lock(url: str) -> LockInfo | None:
    """Remove the store's lock whoever holds it (its writer was killed); the lock it was, None when there
    was none or it was unreadable."""
    try:
        held = read_lock(url)
    except ValueError:
        held = None
    delete_file(url, LOCK_KEY)
    if held is not None:
        delete_file(url, f"{LOCK_KEY}.{held.token}.release")
    return held


@contextlib.contextmanager
def store_lock(url: str, command: str) -> Iterator[LockInfo]:
    """Hold the store's lock for the block, giving it back at the end, on error too. A local store
    directory made only to hold the lock is removed again if nothing else was written into it."""
    new_dir = None if is_s3(url) else Path(absolute_url(url))
    if new_dir is not None and new_dir.exists():
        new_dir = None
    mine = acquire(url, command)
    try:
        yield mine
    finally:
        release(url, mine)
        if new_dir is not None:
            with contextlib.suppress(OSError):
                new_dir.rmdir()  # fails (and is left) when the block wrote a store there
