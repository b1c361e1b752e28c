//! The conformance suite against imagespec's build service (started here on 127.0.0.1, one
//! Docker worker) through the remote builder; images land in the service's registry.

imagespec_tests::conformance!(imagespec_tests::remote::remote);
