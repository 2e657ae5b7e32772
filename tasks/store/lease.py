"""One run per output at a time: a lease on the output root (`runs/lease.json`) with an owner, a heartbeat and an
expiry, written atomically (a temp file renamed locally; one PUT on S3).

Acquire: read the lease; when none is held, or it expired (its holder died without releasing it), write ours.
On a local disk the read and the write happen under an exclusive `flock` of `<root>/.lease.lock`, which decides at
once. Object storage has no lock: the run waits a moment (`settle_s`) and reads the lease back; the last writer
wins, and a loser sees another owner and backs off, so two runs starting together never both proceed. The
holder renews it every `ttl_s / 4` from a background thread and deletes it when done. Prefect's deployment
concurrency limit keeps scheduled runs from overlapping; the lease also covers a CLI run against the same output.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from anomaly_models.errors import RefusedJob

from .output import OutputStore
from .storage import is_local


class OutputBusy(RefusedJob):
    """Another run holds the output's lease."""


def _now() -> float:
    return time.time()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


class Lease:
    def __init__(
        self,
        store: OutputStore,
        run_id: str,
        ttl_s: float = 120.0,
        settle_s: float = 1.0,
        owner: dict[str, Any] | None = None,
        holder_dead: Callable[[dict[str, Any]], bool] | None = None,
    ):
        """`owner`: more about the holder, written with the lease (the Prefect flow run id); `holder_dead(lease)`
        says whether another holder is known to be dead (its flow run was marked Crashed), so its lease is taken
        over at once instead of after it expires."""
        self.store, self.run_id, self.ttl_s, self.settle_s = store, run_id, ttl_s, settle_s
        self.owner, self.holder_dead = dict(owner or {}), holder_dead
        self.url = store.lease_file()
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False  # another run took the lease over (ours expired while storage was unreachable)

    def _record(self) -> dict[str, Any]:
        now = _now()
        return {**self.owner, "token": self.token, "run_id": self.run_id, "host": socket.gethostname(),
                "pid": os.getpid(), "heartbeat": now, "expires": now + self.ttl_s, "heartbeat_at": _iso(now),
                "expires_at": _iso(now + self.ttl_s)}  # fmt: skip

    def _current(self) -> dict[str, Any] | None:
        try:
            return self.store.read_json(self.url)
        except (FileNotFoundError, ValueError):
            return None

    def _held_by_other(self, taking: bool = False) -> dict[str, Any] | None:
        lease = self._current()
        if lease and lease.get("token") != self.token and float(lease.get("expires", 0)) > _now():
            if taking and self.holder_dead is not None and self.holder_dead(lease):
                return None  # its run is known dead: no need to wait for the expiry
            return lease
        return None

    @contextmanager
    def _exclusive(self) -> Iterator[bool]:
        """Check-then-write under an exclusive lock where the store is a local disk (yields True); on object
        storage nothing is locked (yields False) and the caller settles instead."""
        if not is_local(self.url):
            yield False
            return
        path = self.store.lock_file().removeprefix("file://")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def acquire(self, wait_s: float = 0.0, poll_s: float = 2.0) -> Lease:
        deadline = _now() + wait_s
        while True:
            with self._exclusive() as decided:
                holder = self._held_by_other(taking=True)
                if holder is None:
                    self.store.write_json(self.url, self._record())
            if holder is None and not decided:
                time.sleep(self.settle_s)  # let a concurrent writer land, then see who won
                holder = self._held_by_other()
            if holder is None:
                self._thread = threading.Thread(target=self._heartbeat, name="vad-lease", daemon=True)
                self._thread.start()
                return self
            if _now() >= deadline:
                raise OutputBusy(
                    f"output {self.store.root} is in use by run {holder.get('run_id')} (host {holder.get('host')}, "
                    f"pid {holder.get('pid')}); its lease expires at {holder.get('expires_at')} unless renewed"
                )
            time.sleep(poll_s)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            try:
                with self._exclusive():
                    if self._held_by_other() is not None:  # never overwrite a run that took over an expired lease
                        self.lost = True
                        return
                    self.store.write_json(self.url, self._record())
            except Exception:  # a missed heartbeat is retried on the next beat; expiry is generous
                pass

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()  # a heartbeat write in flight lands before the delete below, never after it
            self._thread = None
        try:
            with self._exclusive():
                lease = self._current()
                if lease and lease.get("token") == self.token:
                    self.store.delete(self.url)
        except Exception:  # it expires anyway
            pass

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
