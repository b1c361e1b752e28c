//! The conformance suite against the local Docker engine (BuildKit), pushing to the dev registry.

imagespec_tests::conformance!(imagespec_tests::local::docker);
