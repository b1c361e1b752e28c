"""The flytekit ``ImageSpecBuilder`` that builds through imagespec."""

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import click
from flytekit.image_spec.image_spec import ImageSpec, ImageSpecBuilder

from . import run
from .convert import convert
from .errors import ImagespecError

BUILDER_NAME = "imagespec"
# flytekit's default builder registers with priority 1 and noop with 0; a plugin's is 5 (the
# ImageBuildEngine.register default, as envd's). An ImageSpec without `builder` then builds here;
# `builder="default"` is still flytekit's own.
PRIORITY = 5
# imagespec's builder (`default`, `docker`, `podman`, `union`; see `imagespec builders`); unset:
# the deployment variant's default.
BUILDER_ENV = "IMAGESPEC_BUILDER"


class ImagespecImageBuilder(ImageSpecBuilder):
    """Builds an ImageSpec with imagespec under exactly the name flytekit computed."""

    builder_type = BUILDER_NAME

    def should_build(self, image_spec: ImageSpec) -> bool:
        """imagespec's tri-state existence check and its policy (``build --dry-run``).

        Missing (or forced) -> True; exists, or unknown under the ``assume`` policy -> False;
        unknown under the ``fail`` policy (imagespec's default) raises with imagespec's reason.
        """
        name = image_spec.image_name()
        outcome = self._run(image_spec, ["--dry-run"])
        action = outcome.get("action")
        if action == "would_build":
            click.secho(f"Image {name} not found. Building with imagespec...", fg="blue")
            return True
        if action == "exists":
            click.secho(f"Image {name} found. Skip building.", fg="blue")
        elif action == "assumed_exists":
            reason = (outcome.get("existence") or {}).get("reason", "")
            click.secho(
                f"imagespec assumes the image {name} exists (existence unknown: {reason}; policy `assume`).",
                fg="yellow",
            )
        return False

    def build_image(self, image_spec: ImageSpec) -> Optional[str]:
        outcome = self._run(image_spec, [])
        click.secho(f"imagespec: {outcome.get('image')} {outcome.get('action')}", fg="green")
        return outcome.get("image")

    def _run(self, image_spec: ImageSpec, extra: List[str]) -> Dict[str, Any]:
        name = image_spec.image_name()
        env = dict(os.environ)
        with tempfile.TemporaryDirectory(prefix="imagespec-flytekit-") as tmp:
            converted = convert(image_spec, Path(tmp))
            spec_file = Path(tmp) / "spec.json"
            spec_file.write_text(json.dumps(converted.spec, indent=2))
            flags = list(extra)
            if converted.staged:
                # The files are flytekit's selection: its tag names them (`--tag` replaces the
                # scheme, and refuses a scheme next to it).
                flags += ["--tag", image_spec.tag]
                env.pop("IMAGESPEC_TAG_SCHEME", None)
            else:
                flags += ["--tag-scheme", "flytekit"]
            if not image_spec.registry:
                # flytekit's default builder pushes only to a registry; without one the image
                # stays in the local engine, as there.
                flags.append("--no-push")
            if getattr(image_spec, "_is_force_push", False):
                flags.append("--force")
            if env.get(BUILDER_ENV):
                flags += ["--builder", env[BUILDER_ENV]]
            outcome = run.build(spec_file, os.getcwd(), flags, name, env=env)
        reported = outcome.get("image")
        if reported != name:
            # The conversion (or imagespec's reproduction of flytekit's name) is wrong: pushing
            # under another name would leave pyflyte pointing at an image that does not exist.
            raise ImagespecError(
                name,
                f"imagespec names this image {reported!r} but flytekit names it {name!r}; "
                "this is a bug in flytekitplugins-imagespec or imagespec, please report it with the ImageSpec",
                kind="name_mismatch",
            )
        return outcome
