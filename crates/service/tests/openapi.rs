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

/// The documented properties of a schema.
fn properties(doc: &Node, schema: &str) -> BTreeSet<String> {
    doc.as_mapping()
        .and_then(|m| m.get_mapping("components"))
        .and_then(|m| m.get_mapping("schemas"))
        .and_then(|m| m.get_mapping(schema))
        .and_then(|m| m.get_mapping("properties"))
        .unwrap_or_else(|| panic!("schema {schema} has no properties"))
        .iter()
        .map(|(k, _)| k.as_str().to_string())
        .collect()
}

/// The build request's schema lists exactly the wire type's fields (`secrets` among them), and
/// a file entry's too.
#[test]
fn the_build_request_schema_is_the_wire_types() {
    use imagespec_core::build::SecretBytes;
    use imagespec_protocol::{FileEntry, SubmitBuild};
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("openapi.yaml");
    let doc = marked_yaml::parse_yaml(0, &text).expect("valid YAML");
    let file = FileEntry {
        digest: "sha256:00".into(),
        executable: true,
        symlink: Some("t".into()),
    };
    // Every optional field set, so every field is serialised.
    let request = SubmitBuild {
        spec: serde_json::json!({}),
        files: [("a".to_string(), file.clone())].into(),
        target: "a:b".into(),
        platforms: vec!["linux/amd64".into()],
        force: true,
        base_image: Some("b:c".into()),
        flytekit_version: Some("none".into()),
        union_version: Some("1".into()),
        secrets: [("pip_secret_0".to_string(), SecretBytes::new(b"x".to_vec()))].into(),
    };
    let keys = |v: serde_json::Value| -> BTreeSet<String> {
        v.as_object().expect("object").keys().cloned().collect()
    };
    assert_eq!(
        keys(serde_json::to_value(&request).expect("json")),
        properties(&doc, "SubmitBuild")
    );
    let files = doc
        .as_mapping()
        .and_then(|m| m.get_mapping("components"))
        .and_then(|m| m.get_mapping("schemas"))
        .and_then(|m| m.get_mapping("SubmitBuild"))
        .and_then(|m| m.get_mapping("properties"))
        .and_then(|m| m.get_mapping("files"))
        .and_then(|m| m.get_mapping("additionalProperties"))
        .and_then(|m| m.get_mapping("properties"))
        .expect("files' entry properties")
        .iter()
        .map(|(k, _)| k.as_str().to_string())
        .collect::<BTreeSet<_>>();
    assert_eq!(keys(serde_json::to_value(&file).expect("json")), files);
}
