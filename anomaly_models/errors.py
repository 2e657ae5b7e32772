"""The project's error types, in the lowest layer so every layer raises the same ones.

Each class maps to a documented exit code of the `vad` CLI: a `UsageError` (bad flags, config, annotations or a
name that is not a safe path) exits 2, a `RefusedJob` (the inputs cannot serve this job) exits 1, and a
`VideoError` is recorded against its video in the run manifest (the run goes on and exits 3). Anything else that
reaches the CLI is a bug. Every error survives a pickle round trip (they cross Dask worker boundaries), also with
tblib's exception pickling (which distributed installs): no class mixes two built-in bases of different layouts.
"""

from __future__ import annotations


class VadError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code = 1


class UsageError(VadError, ValueError):
    """Bad usage or configuration: the message names the flag, field, file or name at fault."""

    exit_code = 2


class RefusedJob(VadError):
    """The job cannot run on these inputs (a model trained on other features, missing inputs, nothing to do)."""

    exit_code = 1


class NotFound(RefusedJob, FileNotFoundError):
    """An input the job needs does not exist (an archive, a model folder, a features folder)."""


class VideoError(VadError):
    """One video failed; the run records it in the manifest and carries on."""

    def __init__(self, video: str, reason: str):
        super().__init__(video, reason)
        self.video, self.reason = video, reason

    def __str__(self) -> str:
        return f"{self.video}: {self.reason}"
