"""Prints flytekit's image name for each spec file given, as pyflyte reads one
(`yaml.safe_load` + `ImageSpec(**values)`), with the values the equivalent Python definition
holds: `source_copy_mode` as its `CopyFileDetection` member, a mapping `base_image` as an
`ImageSpec`, `pip_secret_mounts` as tuples. One line per spec: `<file>\t<name or ERROR: ...>`."""
import sys

import yaml
from flytekit.constants import CopyFileDetection
from flytekit.image_spec.image_spec import ImageSpec

MODES = {"all": "ALL", "loaded_modules": "LOADED_MODULES", "none": "NO_COPY", "no_copy": "NO_COPY"}


def spec(values):
    values = dict(values)
    mode = values.get("source_copy_mode")
    if isinstance(mode, str):
        values["source_copy_mode"] = CopyFileDetection[MODES[mode.strip().lower().replace("copyfiledetection.", "")]]
    if isinstance(values.get("base_image"), dict):
        values["base_image"] = spec(values["base_image"])
    if isinstance(values.get("pip_secret_mounts"), list):
        values["pip_secret_mounts"] = [tuple(m) for m in values["pip_secret_mounts"]]
    return ImageSpec(**values)


for path in sys.argv[1:]:
    try:
        with open(path) as f:
            print(f"{path}\t{spec(yaml.safe_load(f)).image_name()}")
    except Exception as e:  # reported, compared as a mismatch
        print(f"{path}\tERROR: {type(e).__name__}: {e}")
