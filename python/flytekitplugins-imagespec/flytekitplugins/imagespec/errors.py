"""The error raised when imagespec refuses a spec or a build fails."""

from typing import Any, Dict, List, Optional


class ImagespecError(RuntimeError):
    """imagespec's own report: its message and, for a bad spec, each problem with field and fix.

    ``kind`` and ``exit_code`` are imagespec's (README, "Exit codes"): ``invalid_spec``/3 for a
    spec problem, ``builder``/4, ``existence_unknown``/5, ``build``/6, ...
    """

    def __init__(
        self,
        image: str,
        message: str,
        kind: str = "failure",
        exit_code: Optional[int] = None,
        diagnostics: Optional[List[Dict[str, Any]]] = None,
    ):
        self.image = image
        self.message = message
        self.kind = kind
        self.exit_code = exit_code
        self.diagnostics = diagnostics or []
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"imagespec could not build {self.image}" if self.image else "imagespec could not run"
        message = self.message
        if self.diagnostics:
            # imagespec's message lists the problems located in the temporary spec file, which
            # means nothing to the user: keep its summary line and list the fields below.
            message = message.splitlines()[0] if message else message
        lines = [f"{head}: {message}"]
        for d in self.diagnostics:
            # The spec file is a temporary translation of the ImageSpec: the field is what the
            # user can find in their code, so it leads.
            lines.append(f"  - `{d.get('field', '')}`: {d.get('message', '')}")
            if d.get("help"):
                lines.append(f"    help: {d['help']}")
        return "\n".join(lines)
