//! The conformance suite against the local Podman engine (Buildah), pushing to the dev registry.

imagespec_tests::conformance!(imagespec_tests::local::podman);
