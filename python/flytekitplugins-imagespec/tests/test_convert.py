"""The ImageSpec -> imagespec spec conversion, every field, checked against flytekit's own name
(`imagespec tag --tag-scheme flytekit` on the converted spec must print `image_name()`)."""

import dataclasses
import json
import os
import subprocess
import sys

from flytekit.constants import CopyFileDetection
from flytekit.image_spec.image_spec import ImageBuildEngine, ImageSpec

from flytekitplugins.imagespec import run
from flytekitplugins.imagespec.convert import convert


def full_spec(workdir) -> ImageSpec:
    """Every ImageSpec field set, with relative paths as a user writes them."""
    (workdir / "requirements.txt").write_text("numpy==2.0.0\n")
    (workdir / "config").mkdir()
    (workdir / "config" / "settings.toml").write_text("mode = 'test'\n")
    (workdir / "src").mkdir()
    (workdir / "src" / "app.py").write_text("print('hi')\n")
    (workdir / "src" / ".gitignore").write_text("*.log\n")
    (workdir / "src" / "debug.log").write_text("left out\n")
    (workdir / "registry.json").write_text("{}")
    base = ImageSpec(name="base", registry="127.0.0.1:5000/convert", base_image="localhost/imagespec/python:3.11-bookworm")
    return ImageSpec(
        name="Full-Spec",
        python_version="3.11",
        builder="imagespec",
        source_root="src",
        env={"B": "2", "A": "1"},
        registry="127.0.0.1:5000/convert",
        packages=["pandas"],
        conda_packages=None,
        conda_channels=None,
        requirements="requirements.txt",
        apt_packages=["git"],
        cuda=None,
        cudnn=None,
        base_image=base,
        platform="linux/amd64",
        pip_index="https://pypi.org/simple",
        pip_extra_index_url=["https://example.com/simple"],
        pip_secret_mounts=[("env:PIP_TOKEN", "/run/secrets/pip_token")],
        pip_extra_args="--pre",
        registry_config="registry.json",
        entrypoint=["python", "-m", "app"],
        commands=["echo hello"],
        tag_format="{spec_hash}-dev",
        source_copy_mode=CopyFileDetection.ALL,
        copy=["config/settings.toml"],
        python_exec=None,
        runtime_packages=["requests"],
        builder_options={"non_root_user": False},
        builder_config={"uv_image": "localhost/imagespec/uv:latest"},
    )


def imagespec_tag(workdir, spec: dict) -> str:
    (workdir / ".spec.json").write_text(json.dumps(spec))
    out = subprocess.run(
        [run.binary(), "--root", str(workdir), "tag", "--tag-scheme", "flytekit", str(workdir / ".spec.json")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_every_field_is_carried_and_the_names_agree(workdir, tmp_path_factory):
    spec = full_spec(workdir)
    converted = convert(spec, tmp_path_factory.mktemp("staging"))
    assert not converted.staged
    fields = {f.name for f in dataclasses.fields(ImageSpec)}
    set_fields = {f for f in fields if getattr(spec, f) is not None}
    assert set(converted.spec) == set_fields - {"builder"}
    assert converted.spec["source_copy_mode"] == "all"
    assert converted.spec["pip_secret_mounts"] == [["env:PIP_TOKEN", "/run/secrets/pip_token"]]
    assert converted.spec["base_image"]["name"] == "base"
    assert converted.spec["requirements"] == "requirements.txt"
    assert imagespec_tag(workdir, converted.spec) == spec.image_name()


def test_copy_modes_and_a_string_base(workdir, tmp_path_factory):
    (workdir / "src").mkdir()
    (workdir / "src" / "a.py").write_text("x = 1\n")
    for mode, name in [(CopyFileDetection.NO_COPY, "none"), (CopyFileDetection.ALL, "all")]:
        spec = ImageSpec(name="modes", registry="127.0.0.1:5000/convert", base_image="localhost/imagespec/python:3.11-bookworm", source_root="src", source_copy_mode=mode)
        converted = convert(spec, tmp_path_factory.mktemp("staging"))
        assert converted.spec["source_copy_mode"] == name
        assert imagespec_tag(workdir, converted.spec) == spec.image_name()


def test_loaded_modules_are_staged_from_flytekits_selection(workdir, tmp_path_factory, monkeypatch):
    """With the default copy mode only this process knows the files: the plugin stages them."""
    (workdir / "pkg").mkdir()
    (workdir / "pkg" / "used.py").write_text("VALUE = 1\n")
    (workdir / "pkg" / "unused.py").write_text("VALUE = 2\n")
    monkeypatch.syspath_prepend(str(workdir / "pkg"))
    __import__("used")
    spec = ImageSpec(name="loaded", registry="127.0.0.1:5000/convert", source_root=str(workdir / "pkg"))
    assert spec.source_copy_mode == CopyFileDetection.LOADED_MODULES
    staging = tmp_path_factory.mktemp("staging")
    converted = convert(spec, staging)
    assert converted.staged
    assert converted.spec["source_copy_mode"] == "all"
    staged = sorted(os.listdir(converted.spec["source_root"]))
    assert staged == ["used.py"]


def test_the_plugin_is_loaded_through_the_entry_point():
    """A fresh interpreter: flytekit loads the plugin itself; an ImageSpec without `builder`
    picks it (highest priority), `default` stays flytekit's."""
    code = (
        "import flytekit\n"
        "from flytekit.image_spec.image_spec import ImageBuildEngine, ImageSpec\n"
        "reg = ImageBuildEngine.get_registry()\n"
        "print(type(reg['imagespec'][0]).__name__, reg['imagespec'][1], type(reg['default'][0]).__name__, ImageSpec().builder)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ImagespecImageBuilder", "5", "DefaultImageBuilder", "imagespec"]
    assert "imagespec" in ImageBuildEngine.get_registry()


def test_a_dockerignore_is_applied_by_flytekit_and_staged(workdir, tmp_path_factory):
    """imagespec's flytekit names do not reproduce docker-py's matcher: the plugin stages what
    flytekit selects and passes flytekit's tag. The ignore files stay out of the staged tree
    (imagespec would apply them a second time, by other rules)."""
    from flytekit.tools.ignore import DockerIgnore, GitIgnore, IgnoreGroup, StandardIgnore
    from flytekit.tools.script_mode import ls_files

    src = workdir / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "keep.py").write_text("x = 1\n")
    (src / "secret.env").write_text("TOKEN=1\n")
    (src / "pkg" / "mod.py").write_text("y = 2\n")
    (src / ".dockerignore").write_text("*.env\n")
    (src / ".gitignore").write_text("*.py\n")  # imagespec would drop every .py file again
    for root in ["src", str(src)]:
        spec = ImageSpec(name="ignored", registry="127.0.0.1:5000/convert", source_root=root, source_copy_mode=CopyFileDetection.ALL)
        converted = convert(spec, tmp_path_factory.mktemp("staging"))
        assert converted.staged
        staged_root = converted.spec["source_root"]
        staged = sorted(
            os.path.relpath(os.path.join(d, f), staged_root) for d, _, fs in os.walk(staged_root) for f in fs
        )
        ignore = IgnoreGroup(root, [GitIgnore, DockerIgnore, StandardIgnore])
        selected, _ = ls_files(root, CopyFileDetection.ALL, deref_symlinks=False, ignore_group=ignore)
        expected = sorted(
            os.path.relpath(p, root) for p in selected if os.path.basename(p) not in (".gitignore", ".dockerignore")
        )
        assert staged == expected, root
        assert "keep.py" in staged and "pkg/mod.py" in staged, staged
