"""`pyflyte build` (no cluster: it serializes the workflow, which builds its images) uses the
plugin for `builder="imagespec"`, with flytekit's default copy mode: the loaded modules."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

WORKFLOW = '''
from flytekit import ImageSpec, task, workflow

image = ImageSpec(
    name="plugin-pyflyte",
    builder="imagespec",
    registry="{registry}/flytekit-plugin",
    base_image="{python_base}",
    python_version="3.11",
    env={{"PLUGIN_RUN": "{run_id}"}},
    builder_config={{"uv_image": "{uv_image}"}},
)


@task(container_image=image)
def hello(name: str) -> str:
    return f"hello {{name}}"


@workflow
def wf(name: str = "flyte") -> str:
    return hello(name=name)
'''


def test_pyflyte_build_builds_the_workflows_image_with_the_plugin(tmp_path, registry, python_base, uv_image, run_id, oci):
    project = tmp_path / "project"
    project.mkdir()
    (project / "workflow.py").write_text(
        textwrap.dedent(WORKFLOW).format(registry=registry, python_base=python_base, uv_image=uv_image, run_id=run_id)
    )
    # Not loaded by the workflow: flytekit's default copy mode leaves it out of the image.
    (project / "notes.py").write_text("NOT_LOADED = True\n")
    pyflyte = Path(sys.executable).with_name("pyflyte")
    out = subprocess.run(
        [str(pyflyte), "build", "workflow.py", "wf"],
        cwd=project,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=1200,
    )
    assert out.returncode == 0, f"stdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    assert "Building with imagespec" in out.stdout, out.stdout

    # The name the plugin reported is the one flytekit computed (the plugin refuses otherwise);
    # the registry has it, with the spec's env and exactly the loaded module in /root.
    line = next(l for l in out.stdout.splitlines() if l.startswith("imagespec: "))
    image = line.split()[1]
    assert image.startswith(f"{registry}/flytekit-plugin/plugin-pyflyte:"), line
    assert f"PLUGIN_RUN={run_id}" in oci.config(image)["config"]["Env"]
    listing = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "ls", image, "/root"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert listing.returncode == 0, listing.stderr
    files = listing.stdout.split()
    assert "workflow.py" in files and "notes.py" not in files, files
