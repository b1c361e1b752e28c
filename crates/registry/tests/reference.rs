//! Image reference parsing and normalisation, as table tests.

use imagespec_registry::{ImageReference, ReferenceErrorKind};

/// (input, registry, repository, tag, digest, canonical, familiar); `""` is "none" and `{d}`
/// stands for a digest.
#[rustfmt::skip]
const VALID: &[[&str; 7]] = &[
    ["ubuntu", "docker.io", "library/ubuntu", "", "", "docker.io/library/ubuntu", "ubuntu"],
    ["ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", "", "docker.io/library/ubuntu:22.04", "ubuntu:22.04"],
    ["org/app:v1", "docker.io", "org/app", "v1", "", "docker.io/org/app:v1", "org/app:v1"],
    ["docker.io/ubuntu", "docker.io", "library/ubuntu", "", "", "docker.io/library/ubuntu", "ubuntu"],
    ["index.docker.io/org/app", "docker.io", "org/app", "", "", "docker.io/org/app", "org/app"],
    ["registry-1.docker.io/library/x", "docker.io", "library/x", "", "", "docker.io/library/x", "x"],
    ["docker.io/library/a/b", "docker.io", "library/a/b", "", "", "docker.io/library/a/b", "library/a/b"],
    ["ghcr.io/org/team/app:1.0", "ghcr.io", "org/team/app", "1.0", "", "ghcr.io/org/team/app:1.0", "ghcr.io/org/team/app:1.0"],
    ["GHCR.IO/org/app", "ghcr.io", "org/app", "", "", "ghcr.io/org/app", "ghcr.io/org/app"],
    ["localhost/app", "localhost", "app", "", "", "localhost/app", "localhost/app"],
    ["localhost:5000/app:dev", "localhost:5000", "app", "dev", "", "localhost:5000/app:dev", "localhost:5000/app:dev"],
    ["127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b", "", "", "127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b"],
    ["[::1]:5000/app", "[::1]:5000", "app", "", "", "[::1]:5000/app", "[::1]:5000/app"],
    // Only a first component with `.`/`:` or `localhost` is a host; `localhost:5000` alone
    // is the image `localhost` with tag `5000`, as in Docker.
    ["myhost/app", "docker.io", "myhost/app", "", "", "docker.io/myhost/app", "myhost/app"],
    ["localhost:5000", "docker.io", "library/localhost", "5000", "", "docker.io/library/localhost:5000", "localhost:5000"],
    ["app@{d}", "docker.io", "library/app", "", "{d}", "docker.io/library/app@{d}", "app@{d}"],
    ["ghcr.io/o/app:v1@{d}", "ghcr.io", "o/app", "v1", "{d}", "ghcr.io/o/app:v1@{d}", "ghcr.io/o/app:v1@{d}"],
    ["a.b/x__y.z-w---v/q_r:T_1.a-B", "a.b", "x__y.z-w---v/q_r", "T_1.a-B", "", "a.b/x__y.z-w---v/q_r:T_1.a-B", "a.b/x__y.z-w---v/q_r:T_1.a-B"],
];

#[test]
fn valid_references_normalise_like_docker() {
    let d = format!("sha256:{}", "a".repeat(64));
    for case in VALID {
        let [
            input,
            registry,
            repository,
            tag,
            digest,
            canonical,
            familiar,
        ] = case.map(|s| s.replace("{d}", &d));
        let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
        let r = ImageReference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.registry, registry, "{input}");
        assert_eq!(r.repository, repository, "{input}");
        assert_eq!(r.tag, some(&tag), "{input}");
        assert_eq!(r.digest, some(&digest), "{input}");
        assert_eq!(r.to_string(), canonical, "{input}");
        assert_eq!(r.familiar(), familiar, "{input}");
        // The canonical form parses back to the same reference.
        assert_eq!(
            ImageReference::parse(&canonical).expect("canonical"),
            r,
            "{input}"
        );
    }
}

#[test]
fn helpers() {
    let r = ImageReference::parse("ubuntu").expect("ref");
    assert_eq!(r.manifest_reference(), "latest");
    assert_eq!(r.api_host(), "registry-1.docker.io");
    assert!(r.is_docker_hub());
    let t = r.with_tag("22.04").expect("tag");
    assert_eq!(t.manifest_reference(), "22.04");
    assert!(r.with_tag("bad tag").is_err());
    let d = format!("sha256:{}", "b".repeat(64));
    let p = t.with_digest(&d).expect("digest");
    assert_eq!(p.manifest_reference(), d);
    assert!(t.with_digest("sha256:xyz").is_err());
    let g = ImageReference::parse("ghcr.io/o/a").expect("ref");
    assert_eq!(g.api_host(), "ghcr.io");
    assert_eq!(g.name(), "ghcr.io/o/a");
    assert_eq!(
        "ghcr.io/o/a:1"
            .parse::<ImageReference>()
            .expect("FromStr")
            .tag
            .as_deref(),
        Some("1")
    );
}

#[test]
fn invalid_references_name_the_problem_and_the_fix() {
    type Check = fn(&ReferenceErrorKind) -> bool;
    let long = format!("ghcr.io/{}", "a".repeat(260));
    let hex = "f".repeat(64);
    let cases: Vec<(&str, Check, &str)> = vec![
        ("", |k| matches!(k, ReferenceErrorKind::Empty), "empty"),
        (
            "ghcr.io/Org/App:v1",
            |k| k.suggestion() == Some("ghcr.io/org/app:v1"),
            "did you mean `ghcr.io/org/app:v1`",
        ),
        (
            "MyApp",
            |k| matches!(k, ReferenceErrorKind::Uppercase { .. }),
            "lowercase",
        ),
        (
            "app:1.0+cu121",
            |k| matches!(k, ReferenceErrorKind::InvalidTag { .. }),
            "did you mean `1.0-cu121`",
        ),
        (
            "app:",
            |k| matches!(k, ReferenceErrorKind::InvalidTag { .. }),
            "not a valid tag",
        ),
        (
            "app:-x",
            |k| matches!(k, ReferenceErrorKind::InvalidTag { .. }),
            "did you mean `x`",
        ),
        (
            "app@sha256:abc",
            |k| matches!(k, ReferenceErrorKind::InvalidDigest { .. }),
            "64 lowercase hex",
        ),
        (
            "app@md5:0123456789abcdef0123456789abcdef",
            |k| matches!(k, ReferenceErrorKind::InvalidDigest { .. }),
            "not a valid digest",
        ),
        (
            "ghcr.io//app",
            |k| matches!(k, ReferenceErrorKind::EmptyComponent),
            "empty component",
        ),
        (
            "ghcr.io/app/",
            |k| matches!(k, ReferenceErrorKind::EmptyComponent),
            "empty component",
        ),
        (
            "ghcr.io/-app",
            |k| matches!(k, ReferenceErrorKind::InvalidRepository { .. }),
            "`-app`",
        ),
        (
            "ghcr.io/a..b",
            |k| matches!(k, ReferenceErrorKind::InvalidRepository { .. }),
            "`a..b`",
        ),
        (
            "ghcr.io/a___b",
            |k| matches!(k, ReferenceErrorKind::InvalidRepository { .. }),
            "`a___b`",
        ),
        (
            "ghcr.io/a b",
            |k| matches!(k, ReferenceErrorKind::InvalidRepository { .. }),
            "not a valid repository path component",
        ),
        (
            "-bad.io/app",
            |k| matches!(k, ReferenceErrorKind::InvalidRegistry { .. }),
            "not a valid registry host",
        ),
        (
            "host:port/app",
            |k| matches!(k, ReferenceErrorKind::InvalidRegistry { .. }),
            "`host:port`",
        ),
        (
            "[::zz]:5000/app",
            |k| matches!(k, ReferenceErrorKind::InvalidRegistry { .. }),
            "registry host",
        ),
        (
            ":tag",
            |k| matches!(k, ReferenceErrorKind::InvalidRepository { .. }),
            "repository path component",
        ),
        (
            &long,
            |k| matches!(k, ReferenceErrorKind::TooLong { .. }),
            "limit is 255",
        ),
        (
            &hex,
            |k| matches!(k, ReferenceErrorKind::ImageId),
            "image ID",
        ),
    ];
    for (input, check, message_part) in cases {
        let err = ImageReference::parse(input).expect_err(input);
        assert!(check(&err.kind), "{input}: {:?}", err.kind);
        assert!(err.to_string().contains(message_part), "{input}: {err}");
    }
}

#[test]
fn credentials_in_a_reference_are_masked() {
    let err = ImageReference::parse("alice:Hunter2@ghcr.io/org/app").expect_err("creds");
    assert!(matches!(
        err.kind,
        ReferenceErrorKind::CredentialsInReference
    ));
    let message = err.to_string();
    assert!(
        !message.contains("Hunter2") && !message.contains("alice"),
        "{message}"
    );
    assert!(message.contains("***@ghcr.io/org/app"), "{message}");
}
