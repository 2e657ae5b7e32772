"""Every planned video ends with exactly one status, and a run outlives the terminal it was started from."""

import os
import subprocess
import sys
import textwrap

from flows.run_record import NO_OUTCOME, RunRecord
from flows.settings import ClusterSettings
from tasks.jobs.plan import Plan
from tasks.store.archive import VideoEntry
from tasks.store.manifest import DONE, SKIPPED, VideoOutcome
from tasks.store.output import OutputStore


def test_a_planned_video_no_task_reported_on_fails_instead_of_vanishing(tmp_path):
    store = OutputStore(str(tmp_path / "out"))
    run = RunRecord(store, "scan", {"videos": 3}, ClusterSettings())
    entries = [VideoEntry(f"cam/{i}.mp4", f"/a/cam/{i}.mp4", 10, f"fp{i}") for i in range(3)]
    run.plan(Plan(extract=entries))
    run.outcomes += [VideoOutcome("cam/0.mp4", DONE, "extract"), VideoOutcome("cam/0.mp4", DONE, "score"),
                     VideoOutcome("cam/0.mp4", DONE, "report"), VideoOutcome("cam/1.mp4", SKIPPED, "extract"),
                     VideoOutcome("cam/1.mp4", DONE, "score")]  # fmt: skip
    summary = run.finish()
    assert summary["counts"] == {"done": 1, "skipped": 0, "failed": 2, "quarantined": 0}
    assert summary["failed"] == {"cam/1.mp4": NO_OUTCOME, "cam/2.mp4": NO_OUTCOME}
    assert not store.exists(store.lease_file())


def _writer(survive: bool) -> str:
    return textwrap.dedent(f"""
        import logging, sys, time
        from prefect.logging.configuration import setup_logging
        from flows.progress import say, survive_lost_output
        setup_logging()  # Prefect's rich console handler on stderr, as in a deployed flow run's process
        if {survive}:
            survive_lost_output()
        time.sleep(1.0)  # the reader is gone by now
        for _ in range(200):
            say("a line of progress " * 20)
            print("and some output " * 20, flush=True)
            logging.getLogger("prefect.flow_runs").warning("a log line " * 20)
        open(sys.argv[1], "w").write("finished")
    """)


def test_a_run_whose_reader_died_carries_on_without_its_output(tmp_path):
    """A Prefect worker that dies closes the pipes of its flow run's process: writes raise BrokenPipeError, which
    used to end the run. With the survivor streams the process finishes its work."""
    for survive in (False, True):
        marker = tmp_path / f"finished-{survive}"
        proc = subprocess.Popen([sys.executable, "-c", _writer(survive), str(marker)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=os.getcwd())  # fmt: skip
        proc.stdout.close()  # the worker is killed: nobody reads any more
        proc.stderr.close()
        proc.wait(timeout=60)
        assert marker.exists() is survive, (survive, proc.returncode)
