import threading
import time

import pytest

from tasks.store.lease import Lease, OutputBusy
from tasks.store.output import OutputStore


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return OutputStore(str(tmp_path / "out"))
    s3 = request.getfixturevalue("s3_endpoint")
    return OutputStore(f"s3://vad-test/lease-{time.monotonic_ns()}", s3)


def test_one_holder_at_a_time_and_release_lets_the_next_in(store):
    first = Lease(store, "run-a", settle_s=0.1).acquire()
    with pytest.raises(OutputBusy, match="in use by run run-a"):
        Lease(store, "run-b", settle_s=0.1).acquire()
    first.release()
    with Lease(store, "run-b", settle_s=0.1).acquire():
        assert store.read_json(store.lease_file())["run_id"] == "run-b"
    assert not store.exists(store.lease_file())


def test_an_expired_lease_is_taken_over(store):
    dead = Lease(store, "crashed", ttl_s=0.5, settle_s=0.1)
    store.write_json(store.lease_file(), {**dead._record(), "expires": time.time() - 1})  # its holder died
    with Lease(store, "next", settle_s=0.1).acquire():
        assert store.read_json(store.lease_file())["run_id"] == "next"


def test_the_holder_renews_its_lease(store):
    with Lease(store, "long", ttl_s=5.2, settle_s=0.1).acquire():
        first = store.read_json(store.lease_file())["expires"]
        time.sleep(2.5)
        assert store.read_json(store.lease_file())["expires"] > first


def test_two_runs_starting_together_never_both_hold_it(store):
    results = {}

    def start(name):
        try:
            results[name] = Lease(store, name, settle_s=1.0).acquire()
        except OutputBusy:
            results[name] = None

    threads = [threading.Thread(target=start, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    holders = [n for n, lease in results.items() if lease is not None]
    assert len(holders) == 1
    results[holders[0]].release()


def test_a_waiting_run_gets_the_lease_when_it_is_released(store):
    holder = Lease(store, "first", settle_s=0.1).acquire()
    threading.Timer(1.0, holder.release).start()
    started = time.monotonic()
    with Lease(store, "second", settle_s=0.1).acquire(wait_s=30, poll_s=0.2):
        assert time.monotonic() - started < 10


class SlowStore(OutputStore):
    """A store whose reads take a while (a busy disk): check-then-write windows of racing runs overlap."""

    def read_json(self, url):
        try:
            return super().read_json(url)
        finally:
            time.sleep(0.3)


def _race(root: str, name: str, barrier, held) -> None:
    barrier.wait()
    try:
        lease = Lease(SlowStore(root), name, settle_s=0.0).acquire()
    except OutputBusy:
        return
    held.append(name)
    time.sleep(1.0)  # hold it while the others try
    lease.release()


def test_on_a_local_disk_the_lock_decides_at_once_among_processes(tmp_path):
    """Local stores need no settle wait: six processes released together, exactly one gets the lease, and a free
    lease is acquired without waiting."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    root = str(tmp_path / "out")
    with ctx.Manager() as manager:
        barrier, held = manager.Barrier(6), manager.list()
        procs = [ctx.Process(target=_race, args=(root, f"run-{i}", barrier, held)) for i in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert len(held) == 1, list(held)
    started = time.monotonic()
    with Lease(OutputStore(root), "quick", settle_s=30).acquire():
        assert time.monotonic() - started < 5


def test_a_live_lease_of_a_run_known_dead_is_taken_over_at_once(store):
    crashed = Lease(store, "crashed", ttl_s=300, settle_s=0.1, owner={"flow_run_id": "f-1"})
    store.write_json(store.lease_file(), crashed._record())  # live for 5 minutes more, its process gone
    with pytest.raises(OutputBusy):  # alive as far as anyone can tell: refused
        Lease(store, "next", settle_s=0.1, holder_dead=lambda lease: False).acquire()
    asked = []
    dead = lambda lease: asked.append(lease["flow_run_id"]) or lease["flow_run_id"] == "f-1"  # noqa: E731
    with Lease(store, "next", settle_s=0.1, owner={"flow_run_id": "f-2"}, holder_dead=dead).acquire():
        lease = store.read_json(store.lease_file())
        assert lease["run_id"] == "next" and lease["flow_run_id"] == "f-2" and asked == ["f-1"]
