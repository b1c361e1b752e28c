//! `openapi.yaml` documents exactly the router's endpoints: every route is in the file, and
//! every path and method in the file is a route.

use std::collections::BTreeSet;

use marked_yaml::types::Node;

#[test]
fn openapi_and_router_agree() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("openapi.yaml");
    let doc = marked_yaml::parse_yaml(0, &text).expect("valid YAML");
    let paths = doc
        .as_mapping()
        .and_then(|m| m.get_mapping("paths"))
        .expect("a `paths` mapping");
    let mut documented = BTreeSet::new();
    for (path, item) in paths.iter() {
        let Node::Mapping(methods) = item else {
            panic!("{} is not a mapping", path.as_str())
        };
        for (method, _) in methods.iter() {
            if ["get", "put", "post", "delete", "patch", "head", "options"]
                .contains(&method.as_str())
            {
                documented.insert((method.as_str().to_uppercase(), path.as_str().to_string()));
            }
        }
    }
    let routed: BTreeSet<(String, String)> = imagespec_service::api::routes()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.yaml: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "openapi.yaml documents endpoints the router lacks: {unrouted:?}"
    );
    // Public endpoints are marked so in the document.
    for route in imagespec_service::api::routes()
        .iter()
        .filter(|r| !r.authenticated)
    {
        let op = paths
            .get_mapping(route.path)
            .and_then(|m| m.get_mapping(&route.method.to_string().to_lowercase()))
            .expect("documented");
        assert!(
            op.get_sequence("security").is_some_and(|s| s.is_empty()),
            "{} must say `security: []`",
            route.path
        );
    }
}
