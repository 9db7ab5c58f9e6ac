"""Run one geossl command in a subprocess, its progress on a Processing feedback, Cancel stopping it.

stdout and stderr are read by two threads into one queue, so that a command that prints nothing for a while
(a long training step) never keeps the loop from noticing Cancel. Cancel sends geossl SIGTERM, which stops it
as Ctrl+C does (it removes what it had staged and closes its Dask cluster), and kills its whole process group
(Dask workers included) when it has not ended after :data:`GRACE_S` seconds.
"""

from __future__ import annotations

import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time

from qgis.core import QgsProcessingException

from .environment import child_environment, python_of
from .protocol import CLI_MODULE, PROGRESS_FLAG, is_error, parse_progress

#: Seconds an interrupted geossl has to end before it is killed.
GRACE_S = 15.0
#: How often (seconds) the loop looks at Cancel while geossl is silent.
POLL_S = 0.2


def command_line(environment: str, arguments: list) -> list:
    """The command that runs ``geossl ARGUMENTS`` with the Python of ``environment``."""
    python = python_of(environment)
    if not python.is_file():
        raise QgsProcessingException(f"geossl's Python {python} does not exist: set the geossl environment in "
                                     "Processing › Options › Providers › geossl")
    return [str(python), "-m", CLI_MODULE, PROGRESS_FLAG, *[str(a) for a in arguments]]


def run_geossl(environment: str, arguments: list, feedback) -> list:
    """Run ``geossl ARGUMENTS``; return its stdout lines. Its one error line is raised as the exception."""
    command = command_line(environment, arguments)
    feedback.pushCommandInfo(" ".join(shlex.quote(c) for c in command))
    process = _start(command)
    lines: queue.Queue = queue.Queue()
    for stream, name in ((process.stdout, "out"), (process.stderr, "err")):
        threading.Thread(target=_pump, args=(stream, name, lines), daemon=True).start()
    out, error, open_streams = [], None, 2
    with process:
        while open_streams:
            if feedback.isCanceled():
                _stop(process)
                raise QgsProcessingException("Canceled: geossl was stopped")
            try:
                name, line = lines.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if line is None:
                open_streams -= 1
            elif name == "out":
                out.append(line)
            elif _show(line, feedback):
                error = line
    if process.returncode != 0:
        raise QgsProcessingException(error or f"geossl exited with code {process.returncode}")
    return out


def _start(command: list) -> subprocess.Popen:
    """Start ``command`` in its own process group (so that Cancel reaches every process it starts)."""
    group = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if sys.platform == "win32"
             else {"start_new_session": True})
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, encoding="utf-8", errors="replace", env=child_environment(), **group)


def _pump(stream, name: str, lines: queue.Queue) -> None:
    """Put every line of ``stream`` on ``lines`` as ``(name, line)``, then ``(name, None)``."""
    for line in stream:
        lines.put((name, line.rstrip("\r\n")))
    lines.put((name, None))


def _show(line: str, feedback) -> bool:
    """Show one stderr line on ``feedback``; True when it is geossl's error line."""
    progress = parse_progress(line)
    if progress is not None:
        feedback.setProgressText(progress[1])
        feedback.setProgress(progress[0])
        return False
    if is_error(line):
        feedback.reportError(line)
        return True
    if " WARNING " in line:
        feedback.pushWarning(line)
    elif line.strip():
        feedback.pushConsoleInfo(line)
    return False


def _stop(process: subprocess.Popen) -> None:
    """Terminate geossl; kill its process group if it has not ended after :data:`GRACE_S` (module docstring)."""
    if process.poll() is not None:
        return
    process.terminate()
    deadline = time.monotonic() + GRACE_S
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(POLL_S)
    if sys.platform == "win32":
        process.kill()
    else:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:  # the group is gone with geossl
            pass
    process.wait()
