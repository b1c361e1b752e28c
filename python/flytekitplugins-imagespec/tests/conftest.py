"""Fixtures for the plugin's tests: the dev environment's registry and base image (set up by
scripts/dev-env.sh; `source .dev-env/env`), and a Docker config holding the registry login."""

import base64
import json
import os
import uuid
from pathlib import Path

import pytest
import requests


def dev_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"${name} is not set: run scripts/dev-env.sh and `source .dev-env/env`")
    return value


@pytest.fixture(scope="session")
def registry() -> str:
    return dev_env("IMAGESPEC_REGISTRY")


@pytest.fixture(scope="session")
def python_base() -> str:
    """A local base image with Python 3.11 (nothing is pulled from public registries)."""
    return dev_env("IMAGESPEC_PYTHON_IMAGE")


@pytest.fixture(scope="session")
def uv_image() -> str:
    """The local uv helper image (the default, on ghcr.io, cannot be pulled here)."""
    return dev_env("IMAGESPEC_UV_IMAGE")


@pytest.fixture(scope="session")
def auth() -> tuple:
    return (dev_env("IMAGESPEC_REGISTRY_USER"), dev_env("IMAGESPEC_REGISTRY_PASSWORD"))


@pytest.fixture(scope="session", autouse=True)
def docker_config(tmp_path_factory, registry, auth):
    """The registry login where imagespec (and docker) look for it: $DOCKER_CONFIG/config.json."""
    folder = tmp_path_factory.mktemp("docker-config")
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {registry: {"auth": token}}}))
    os.chmod(folder / "config.json", 0o600)
    old = os.environ.get("DOCKER_CONFIG")
    os.environ["DOCKER_CONFIG"] = str(folder)
    # A user's setting must not change the names the tests expect.
    os.environ.pop("IMAGESPEC_TAG_SCHEME", None)
    os.environ["IMAGESPEC_CONFIG"] = "/nonexistent/imagespec-config.yaml"
    yield folder
    if old is None:
        os.environ.pop("DOCKER_CONFIG", None)
    else:
        os.environ["DOCKER_CONFIG"] = old


@pytest.fixture
def run_id() -> str:
    """Unique per test run, put in the spec's `env`: the image is new, so a build really builds."""
    return uuid.uuid4().hex[:12]


class Registry:
    """Reads the dev registry over the OCI distribution API (basic auth)."""

    ACCEPT = ", ".join(
        [
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ]
    )

    def __init__(self, host: str, auth: tuple):
        self.host = host
        self.auth = auth

    def _split(self, image: str):
        assert image.startswith(self.host + "/"), image
        repo, tag = image[len(self.host) + 1 :].rsplit(":", 1)
        return repo, tag

    def manifest(self, image: str):
        """(digest, manifest) or None when the registry has no such tag."""
        repo, tag = self._split(image)
        r = requests.get(
            f"http://{self.host}/v2/{repo}/manifests/{tag}",
            auth=self.auth,
            headers={"Accept": self.ACCEPT},
            timeout=30,
        )
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.headers.get("Docker-Content-Digest"), r.json()

    def config(self, image: str) -> dict:
        """The image's config (env, labels, ...), following an index to its first manifest."""
        repo, _ = self._split(image)
        found = self.manifest(image)
        assert found is not None, f"{image} is not in the registry"
        manifest = found[1]
        if "manifests" in manifest:
            digest = manifest["manifests"][0]["digest"]
            r = requests.get(
                f"http://{self.host}/v2/{repo}/manifests/{digest}",
                auth=self.auth,
                headers={"Accept": self.ACCEPT},
                timeout=30,
            )
            r.raise_for_status()
            manifest = r.json()
        r = requests.get(
            f"http://{self.host}/v2/{repo}/blobs/{manifest['config']['digest']}", auth=self.auth, timeout=30
        )
        r.raise_for_status()
        return r.json()


@pytest.fixture(scope="session")
def oci(registry, auth) -> Registry:
    return Registry(registry, auth)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """Where 'pyflyte runs': relative spec paths resolve here."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
