"""Real builds through ImageBuildEngine: the local engine builds, the dev registry receives the
image under flytekit's `image_name()`, a second build does nothing, a bad spec is refused with
imagespec's message."""

import pytest
from flytekit.image_spec.image_spec import ImageBuildEngine, ImageSpec

from flytekitplugins.imagespec import BUILDER_NAME, ImagespecError


def spec_for(registry, python_base, uv_image, run_id) -> ImageSpec:
    return ImageSpec(
        name="plugin-build",
        builder="imagespec",
        registry=f"{registry}/flytekit-plugin",
        base_image=python_base,
        python_version="3.11",
        apt_packages=["jq"],
        env={"PLUGIN_RUN": run_id},
        commands=["jq --version > /opt/jq-version"],
        builder_config={"uv_image": uv_image},
    )


def test_build_pushes_under_flytekits_name_then_is_a_no_op(
    workdir, registry, python_base, uv_image, run_id, oci, monkeypatch, capfd
):
    spec = spec_for(registry, python_base, uv_image, run_id)
    name = spec.image_name()
    assert oci.manifest(name) is None, "a fresh run id names a new image"

    ImageBuildEngine.build(spec)

    pushed = oci.manifest(name)
    assert pushed is not None, f"{name} was not pushed"
    config = oci.config(name)["config"]
    assert f"PLUGIN_RUN={run_id}" in config["Env"]
    out = capfd.readouterr()
    assert "not found. Building with imagespec" in out.out
    assert "#1 " in out.err, "build progress reaches the terminal"

    # Again, with flytekit's per-process cache cleared: imagespec finds the image and the
    # plugin does not build.
    ImageBuildEngine.build.cache_clear()
    builder = ImageBuildEngine.get_registry()[BUILDER_NAME][0]

    def must_not_build(_spec):
        raise AssertionError("a second build of an existing image must not build")

    monkeypatch.setattr(builder, "build_image", must_not_build)
    ImageBuildEngine.build(spec_for(registry, python_base, uv_image, run_id))
    assert "found. Skip building" in capfd.readouterr().out
    assert oci.manifest(name)[0] == pushed[0], "the image was not pushed again"


def test_an_impossible_cuda_is_refused_with_imagespecs_message(workdir, registry, run_id):
    spec = ImageSpec(
        name="plugin-bad-cuda",
        builder="imagespec",
        registry=f"{registry}/flytekit-plugin",
        python_version="3.11",
        cuda="10.0",
        env={"PLUGIN_RUN": run_id},
    )
    with pytest.raises(ImagespecError) as raised:
        ImageBuildEngine.build(spec)
    err = raised.value
    assert err.kind == "invalid_spec" and err.exit_code == 3
    assert [d["field"] for d in err.diagnostics] == ["cuda"]
    text = str(err)
    assert "`cuda`" in text and "10.0" in text
    assert "12.8" in text, f"the valid choices are listed: {text}"


def test_without_a_registry_the_image_stays_local(workdir, python_base, uv_image, run_id):
    """flytekit pushes only to a registry: the plugin then checks the local engine (--no-push)."""
    spec = ImageSpec(
        name="plugin-local",
        builder="imagespec",
        base_image=python_base,
        env={"PLUGIN_RUN": run_id},
        builder_config={"uv_image": uv_image},
    )
    builder = ImageBuildEngine.get_registry()[BUILDER_NAME][0]
    assert builder.should_build(spec) is True
