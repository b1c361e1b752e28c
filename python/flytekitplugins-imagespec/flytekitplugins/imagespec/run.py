"""Running ``imagespec build --output json`` and reading its JSON lines.

imagespec prints one JSON object a line on stdout: progress events (``step``, ``log``,
``status``), then ``{"event": "result", "outcome": ...}`` or ``{"event": "error", ...}``.
Progress goes to the user's terminal (stderr) as it arrives; imagespec's own stderr (warnings,
retries) is inherited unchanged.
"""

import json
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import click

from .errors import ImagespecError

BIN_ENV = "IMAGESPEC_BIN"


def binary() -> str:
    """The imagespec binary: ``$IMAGESPEC_BIN``, else this environment's, else the PATH's."""
    named = os.environ.get(BIN_ENV)
    if named:
        if not os.access(named, os.X_OK):
            raise ImagespecError("", f"${BIN_ENV} names {named!r}, which is not an executable file")
        return named
    here = Path(sysconfig.get_path("scripts")) / "imagespec"
    if os.access(here, os.X_OK):
        return str(here)
    found = shutil.which("imagespec")
    if found:
        return found
    raise ImagespecError(
        "",
        "the imagespec binary is not installed: `pip install imagespec` (the package in the "
        f"imagespec repository's python/imagespec), or set ${BIN_ENV}",
    )


def show(event: Dict[str, Any]) -> None:
    """One progress event on the terminal, as `imagespec build` shows it in text mode."""
    kind = event.get("event")
    if kind == "step":
        click.secho(f"#{event.get('index')} {event.get('name')}", fg="blue", err=True)
    elif kind == "log":
        click.echo(f"  | {event.get('line')}", err=True)
    elif kind == "status":
        click.secho(str(event.get("message")), fg="blue", err=True)


def build(
    spec_file: Path,
    root: str,
    flags: List[str],
    image: str,
    env: Optional[Dict[str, str]] = None,
    on_event: Callable[[Dict[str, Any]], None] = show,
) -> Dict[str, Any]:
    """Runs ``imagespec build`` and returns the outcome; raises :class:`ImagespecError`."""
    cmd = [binary(), "--output", "json", "--root", root, "build", str(spec_file), *flags]
    outcome: Optional[Dict[str, Any]] = None
    error: Optional[Dict[str, Any]] = None
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                # Not ours to interpret; do not lose it.
                click.echo(line.rstrip("\n"), err=True)
                continue
            if not isinstance(event, dict):
                continue
            if event.get("event") == "result":
                outcome = event.get("outcome")
            elif event.get("event") == "error":
                error = event.get("error") or {}
            else:
                on_event(event)
        code = proc.wait()
    if error is not None:
        raise ImagespecError(
            image,
            str(error.get("message", "")),
            kind=str(error.get("kind", "failure")),
            exit_code=error.get("exit_code", code),
            diagnostics=error.get("diagnostics") or [],
        )
    if code != 0 or outcome is None:
        raise ImagespecError(
            image,
            f"`{' '.join(cmd)}` exited with code {code} without a result (see the messages above)",
            exit_code=code,
        )
    return outcome
