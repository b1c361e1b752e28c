"""One ImageSpec built and pushed by flytekit's default builder and by the imagespec plugin.

Run by scripts/bench-flytekit-builders.sh (the plugin venv, the dev env). Each run uses a new
`env` value, so both builders redo the same work: every layer from `env` on (the Python
install with flytekit from PyPI, the commands), over a warm engine cache for what comes before.

flytekit's default builder cannot run unchanged here, for three reasons, each worked around as
closely as possible and printed:
- its Dockerfile starts with `#syntax=docker/dockerfile:1.5`, which makes BuildKit pull a
  frontend image from Docker Hub (nothing can be pulled here): the line is dropped, so the
  engine's built-in frontend runs it;
- it runs `docker build --push`, which needs the buildx plugin (Debian's docker 20.10 CLI has
  BuildKit built in but no `--push`): the bench runs `docker build`, then `docker push`;
- its Python comes from micromamba (conda-forge, unreachable): the spec sets `python_exec` to
  the base image's Python, and `micromamba_image` to the local base (it is mounted only for its
  CA bundle).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from flytekit.image_spec.default_builder import create_docker_context
from flytekit.image_spec.image_spec import ImageBuildEngine, ImageSpec

DOCKER = "/usr/bin/docker"


def spec(builder: str, run: str) -> ImageSpec:
    env = os.environ
    return ImageSpec(
        name=f"bench-{builder}",
        builder=builder,
        registry=f"{env['IMAGESPEC_REGISTRY']}/bench-builders",
        base_image=env["IMAGESPEC_PYTHON_IMAGE"],
        python_exec="/usr/bin/python3",
        apt_packages=["jq"],
        packages=["pyyaml"],
        env={"BENCH_RUN": run},
        commands=["python3 -c 'import yaml, flytekit'"],
        builder_config={"uv_image": env["IMAGESPEC_UV_IMAGE"], "micromamba_image": env["IMAGESPEC_PYTHON_IMAGE"]},
    )


def flytekit_default(s: ImageSpec) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        create_docker_context(s, Path(tmp))
        dockerfile = Path(tmp) / "Dockerfile"
        lines = dockerfile.read_text().splitlines(keepends=True)
        assert lines[0].startswith("#syntax="), lines[0]
        dockerfile.write_text("".join(lines[1:]))
        build_env = dict(os.environ, DOCKER_BUILDKIT="1")
        cmd = [DOCKER, "build", "--tag", s.image_name(), "--platform", s.platform, tmp]
        subprocess.run(cmd, check=True, env=build_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([DOCKER, "push", s.image_name()], check=True, stdout=subprocess.DEVNULL)


def plugin(s: ImageSpec) -> None:
    import flytekitplugins.imagespec  # noqa: F401  (registers the builder)

    ImageBuildEngine.build(s)


def timed(fn, s: ImageSpec) -> float:
    t0 = time.monotonic()
    fn(s)
    return time.monotonic() - t0


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    results = {"default": [], "imagespec": []}
    # One warm-up each (apt layer, uv cache), not counted.
    for builder, fn in [("default", flytekit_default), ("imagespec", plugin)]:
        timed(fn, spec(builder, uuid.uuid4().hex))
    for _ in range(runs):
        for builder, fn in [("default", flytekit_default), ("imagespec", plugin)]:
            results[builder].append(timed(fn, spec(builder, uuid.uuid4().hex)))
    for builder, times in results.items():
        shown = " ".join(f"{t:.1f}" for t in times)
        print(f"{builder:10s} median {statistics.median(times):6.1f} s  runs: {shown}")


if __name__ == "__main__":
    main()
