"""The pull step of `prefect.yaml`'s deployments: where a deployed run works on the worker's machine.

A deployment names its flow by module path, so nothing is pulled: the worker's machine has vad installed. The step
only enters the run's working directory, `VAD_HOME`, where relative paths of the settings (a local `./vad-data`, a
config file) resolve. Unset, it is the home directory of the user running the worker; set to a folder that does not
exist, the run fails at once saying so (Prefect's own `set_working_directory` would chdir to '' when unset)."""

from __future__ import annotations

import os


def enter_vad_home() -> dict[str, str]:
    home = os.environ.get("VAD_HOME") or os.path.expanduser("~")
    if not os.path.isdir(home):
        raise NotADirectoryError(f"VAD_HOME={home!r} is not a folder on this machine: set it to an existing folder")
    os.chdir(home)
    return {"directory": os.getcwd()}
