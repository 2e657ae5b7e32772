"""What stops a run from outside: Ctrl-C and SIGTERM (which unwinds like Ctrl-C), and Prefect's termination
signal when Prefect is loaded."""

from __future__ import annotations

import signal
import sys
import threading


def interruptions() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "stopped", not "failed". Prefect's TerminationSignal is looked up, not imported:
    commands that need no orchestration never import Prefect (about 1.5 s)."""
    prefect_exceptions = sys.modules.get("prefect.exceptions")
    termination = getattr(prefect_exceptions, "TerminationSignal", None)
    return (KeyboardInterrupt, termination) if termination else (KeyboardInterrupt,)


def sigterm_stops_cleanly() -> None:
    """SIGTERM unwinds like Ctrl-C: no new work, the manifest is written, the cluster and Prefect's temporary API
    server stop (their exit handlers run), no process is left behind."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
