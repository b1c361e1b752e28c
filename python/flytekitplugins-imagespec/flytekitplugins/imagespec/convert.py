"""flytekit's ImageSpec object -> imagespec's spec (a JSON document with the same keys).

Every dataclass field is carried over under its own name (imagespec accepts all of flytekit's
keys and refuses, naming the field, any it does not know), with these translations:

- ``builder`` is left out: it names this plugin, not one of imagespec's builders;
- ``source_copy_mode`` (a ``CopyFileDetection`` member) becomes ``all``, ``loaded_modules`` or
  ``none``;
- ``pip_secret_mounts`` tuples become ``[source, destination]`` lists;
- a spec-valued ``base_image`` becomes a nested spec (converted the same way);
- paths stay as the user wrote them: they are relative to where pyflyte runs, which the
  runner passes as ``--root``, so flytekit's and imagespec's digests see the same paths.

The files flytekit copies for ``source_root`` can only be known in this process when
``source_copy_mode`` is ``LOADED_MODULES`` (the modules Python has imported), and imagespec does
not reproduce flytekit's ``.dockerignore`` matcher. In those cases the plugin stages exactly the
files flytekit's ``ls_files`` selects into a directory and hands imagespec that directory with
``source_copy_mode: all``; the image is then named by flytekit's tag passed with ``--tag``
instead of being recomputed (see :class:`Converted`).
"""

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any, Dict

from flytekit.constants import CopyFileDetection
from flytekit.image_spec.image_spec import ImageSpec

COPY_MODES = {
    CopyFileDetection.ALL: "all",
    CopyFileDetection.LOADED_MODULES: "loaded_modules",
    CopyFileDetection.NO_COPY: "none",
}

# Ignore files imagespec honours in a tree (left out of a staged tree, see stage_sources).
IGNORE_FILES = {".gitignore", ".dockerignore"}

# Fields that are flytekit's business only.
NOT_CARRIED = {"builder"}


@dataclasses.dataclass
class Converted:
    """A spec for imagespec and how its name is to be fixed.

    ``staged`` is True when the source files were staged from flytekit's own selection: imagespec
    cannot then recompute flytekit's name and is given flytekit's tag (``--tag``). Otherwise
    imagespec names the image itself with ``--tag-scheme flytekit`` and the runner checks that
    the two names agree.
    """

    spec: Dict[str, Any]
    staged: bool


def needs_staging(image_spec: ImageSpec) -> bool:
    """Whether flytekit's source file selection has to be staged for imagespec."""
    mode = image_spec.source_copy_mode
    if image_spec.source_root is None or mode in (None, CopyFileDetection.NO_COPY):
        return False
    if mode == CopyFileDetection.LOADED_MODULES:
        return True
    return (Path(image_spec.source_root) / ".dockerignore").exists()


def convert(image_spec: ImageSpec, staging_dir: Path) -> Converted:
    """The spec for imagespec; ``staging_dir`` receives staged source files when needed."""
    spec: Dict[str, Any] = {}
    staged = False
    for field in dataclasses.fields(image_spec):
        value = getattr(image_spec, field.name)
        if value is None or field.name in NOT_CARRIED:
            continue
        if field.name == "source_copy_mode":
            spec[field.name] = copy_mode(value)
        elif field.name == "pip_secret_mounts":
            spec[field.name] = [list(mount) for mount in value]
        elif field.name == "base_image" and isinstance(value, ImageSpec):
            base = convert(value, staging_dir / "base")
            if base.staged:
                raise ValueError(
                    "a spec-valued base_image whose source files must be staged cannot be nested; "
                    "build it first (ImageBuildEngine.build does) and pass its image_name()"
                )
            spec[field.name] = base.spec
        else:
            spec[field.name] = value
    if needs_staging(image_spec):
        spec["source_root"] = str(stage_sources(image_spec, staging_dir / "source"))
        spec["source_copy_mode"] = "all"
        staged = True
    return Converted(spec=spec, staged=staged)


def copy_mode(value: Any) -> Any:
    """The imagespec name of a ``CopyFileDetection`` member (a string is passed as written)."""
    if isinstance(value, CopyFileDetection):
        return COPY_MODES[value]
    return value


def stage_sources(image_spec: ImageSpec, dest: Path) -> Path:
    """Copies the files flytekit's builders copy for ``source_root`` into ``dest``.

    The selection is flytekit's own (``ls_files`` with the same ignore rules its default builder
    and its tag use), so the image holds what flytekit's name stands for, except the ignore
    files themselves. Symlinks stay links.
    """
    from flytekit.tools.ignore import DockerIgnore, GitIgnore, IgnoreGroup, StandardIgnore
    from flytekit.tools.script_mode import ls_files

    root = str(image_spec.source_root)
    ignore = IgnoreGroup(root, [GitIgnore, DockerIgnore, StandardIgnore])
    files, _ = ls_files(root, image_spec.source_copy_mode, deref_symlinks=False, ignore_group=ignore)
    dest.mkdir(parents=True, exist_ok=True)
    for path in files:
        rel = os.path.relpath(path, start=root)
        if os.path.basename(rel) in IGNORE_FILES:
            # flytekit has applied it; imagespec would apply it again to the staged tree, with
            # its own (gitignore) rules, and could drop files flytekit selected.
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target, follow_symlinks=False)
    return dest

