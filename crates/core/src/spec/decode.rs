//! Decoding a spec from YAML or JSON text.
//!
//! We parse into a position-carrying node tree (`marked_yaml`) instead of deserialising with serde,
//! because serde stops at the first problem and loses positions of valid values; here every
//! problem of a file is collected with its line and column, and the position of every field is
//! kept so that later validation can point at it too. JSON is a subset of YAML, so one decoder
//! serves both.

use std::collections::BTreeMap;
use std::path::Path;

use marked_yaml::loader::{LoadError, LoaderOptions, parse_yaml_with_options};
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, Node};

use super::diagnostic::{Diagnostic, DiagnosticKind, Diagnostics, Location};
use super::model::{BaseImage, DEFAULT_NAME, ImageSpec, SecretMount, SourceCopyMode, SpecField};

/// Where each field path of a decoded spec starts in its file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldLocations {
    map: BTreeMap<String, Location>,
}

impl FieldLocations {
    /// The location of `field`, or of the nearest enclosing field that has one.
    pub fn find(&self, field: &str) -> Option<Location> {
        let mut path = field;
        loop {
            if let Some(loc) = self.map.get(path) {
                return Some(*loc);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }

    fn insert(&mut self, field: &str, node_loc: Option<Location>) {
        if let Some(loc) = node_loc {
            self.map.insert(field.to_string(), loc);
        }
    }
}

/// The result of decoding: the spec as far as it could be read, where its fields are, and every
/// problem found (empty when the text is a well-formed spec).
#[derive(Debug)]
pub struct Decoded {
    pub spec: ImageSpec,
    pub locations: FieldLocations,
    pub diagnostics: Vec<Diagnostic>,
    /// The parsed mapping as written (key order, quoting), for names that depend on the
    /// spelling of the file, such as flytekit's (`crate::hash::flytekit`).
    pub document: Option<Node>,
}

/// Decodes spec text (YAML or JSON), collecting every problem instead of stopping at the first.
pub fn decode_spec(text: &str, file: Option<&Path>) -> Decoded {
    let mut diags = Diagnostics::default();
    diags.json = is_json(text, file);
    let mut locations = FieldLocations::default();
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    if text.trim().is_empty() {
        diags.push(
            Diagnostic::new(DiagnosticKind::Syntax, "", "the spec file is empty")
                .at(Some(Location { line: 1, column: 1 }))
                .with_help("a spec needs at least `name: my-image`"),
        );
    }
    let parsed = parse_yaml_with_options(0, text, options);
    // The loader reads the first document only; what follows it would be dropped unseen.
    let rest = if parsed.is_ok() && !text.trim().is_empty() {
        content_after_first_document(text)
    } else {
        None
    };
    let document = match &parsed {
        Ok(node @ Node::Mapping(_)) if rest.is_none() => Some(node.clone()),
        _ => None,
    };
    let spec = match parsed {
        _ if text.trim().is_empty() => ImageSpec::default(),
        _ if rest.is_some() => {
            diags.extend(rest);
            ImageSpec::default()
        }
        Ok(Node::Mapping(map)) => decode_mapping(&map, "", &mut locations, &mut diags),
        Ok(other) => {
            diags.push(
                Diagnostic::new(
                    DiagnosticKind::WrongType,
                    "",
                    format!(
                        "a spec must be a mapping of fields, found {}",
                        kind_of(&other)
                    ),
                )
                .at(loc(&other))
                .with_help("start the file with `name: my-image`"),
            );
            ImageSpec::default()
        }
        Err(err) => {
            diags.push(syntax_diagnostic(&err));
            ImageSpec::default()
        }
    };
    let mut diagnostics = diags.into_vec();
    for d in &mut diagnostics {
        d.file = file.map(Path::to_path_buf);
        d.location = d.location.map(|l| within(text, l));
    }
    for l in locations.map.values_mut() {
        *l = within(text, *l);
    }
    Decoded {
        spec,
        locations,
        diagnostics,
        document,
    }
}

/// The first problem after the first document: a second document (`---`), or text that is not
/// YAML at all (`{"name": "x"} garbage`). Scans the whole stream, which the loader does not.
pub(crate) fn content_after_first_document(text: &str) -> Option<Diagnostic> {
    use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
    use yaml_rust2::scanner::{Marker, TScalarStyle};

    /// Where each document starts, and whether it holds anything but an empty scalar.
    #[derive(Default)]
    struct Documents {
        starts: Vec<(Marker, bool)>,
    }
    impl MarkedEventReceiver for Documents {
        fn on_event(&mut self, ev: Event, mark: Marker) {
            match ev {
                Event::DocumentStart => self.starts.push((mark, false)),
                // A lone `---` at the end is an empty document (a null), not content.
                Event::Scalar(ref v, TScalarStyle::Plain, _, None) if v.is_empty() => {}
                Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
                _ => {
                    if let Some(last) = self.starts.last_mut() {
                        last.1 = true;
                    }
                }
            }
        }
    }
    let mut documents = Documents::default();
    let at = |m: &Marker| {
        Some(Location {
            line: m.line(),
            column: m.col() + 1,
        })
    };
    if let Err(e) = Parser::new_from_str(text).load(&mut documents, true) {
        return Some(
            Diagnostic::new(
                DiagnosticKind::Syntax,
                "",
                format!("not valid YAML or JSON: {}", e.info()),
            )
            .at(at(e.marker()))
            .with_help("a spec file holds one YAML mapping or JSON object and nothing after it"),
        );
    }
    let (mark, _) = documents
        .starts
        .iter()
        .skip(1)
        .find(|(_, content)| *content)?;
    Some(
        Diagnostic::new(
            DiagnosticKind::Syntax,
            "",
            "a second YAML document (after `---`); a spec file holds exactly one",
        )
        .at(at(mark))
        .with_help("merge the documents into one mapping, or put each spec in its own file"),
    )
}

/// The parser reports an error at the end of the input on the line after the last one; the
/// user's editor has no such line, so it is reported at the end of the last line.
fn within(text: &str, at: Location) -> Location {
    let lines = text.lines().count().max(1);
    if at.line <= lines {
        return at;
    }
    let last = text.lines().last().unwrap_or_default();
    Location {
        line: lines,
        column: last.chars().count() + 1,
    }
}

fn syntax_diagnostic(err: &LoadError) -> Diagnostic {
    let (marker, message) = match err {
        LoadError::TopLevelMustBeMapping(m) => {
            (Some(*m), "a spec must be a mapping of fields".to_string())
        }
        LoadError::TopLevelMustBeSequence(m) => (Some(*m), "unexpected top-level sequence".into()),
        LoadError::UnexpectedAnchor(m) => (
            Some(*m),
            "YAML anchors and aliases are not supported in spec files".into(),
        ),
        LoadError::MappingKeyMustBeScalar(m) => {
            (Some(*m), "mapping keys must be plain strings".into())
        }
        LoadError::UnexpectedTag(m) => (
            Some(*m),
            "YAML tags (`!tag`) are not supported in spec files".into(),
        ),
        LoadError::ScanError(m, e) => (Some(*m), format!("not valid YAML or JSON: {e}")),
        LoadError::DuplicateKey(inner) => (
            inner.key.span().start().copied(),
            format!("duplicate key `{}`", inner.key.as_str()),
        ),
    };
    let location = marker.map(|m| Location {
        line: m.line(),
        column: m.column(),
    });
    Diagnostic::new(DiagnosticKind::Syntax, "", message).at(location)
}

fn loc(node: &Node) -> Option<Location> {
    node.span().start().map(|m| Location {
        line: m.line(),
        column: m.column(),
    })
}

fn scalar_loc(node: &MarkedScalarNode) -> Option<Location> {
    node.span().start().map(|m| Location {
        line: m.line(),
        column: m.column(),
    })
}

fn kind_of(node: &Node) -> &'static str {
    match node {
        Node::Scalar(_) => "a string",
        Node::Mapping(_) => "a mapping",
        Node::Sequence(_) => "a list",
    }
}

/// `.nan`, `NaN`, `.inf`, `-.Inf`, `Infinity`, `-inf`: what YAML 1.2 or a JSON parser reads as
/// a non-finite floating-point number.
fn is_special_float(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let word = unsigned.strip_prefix('.').unwrap_or(unsigned);
    matches!(
        word.to_ascii_lowercase().as_str(),
        "nan" | "inf" | "infinity"
    )
}

/// A plain (unquoted) `null`, `~` or empty scalar means "not set", as in YAML.
fn is_null(node: &Node) -> bool {
    match node {
        Node::Scalar(s) => {
            s.may_coerce() && matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL")
        }
        _ => false,
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Whether a spec is written in JSON (a `.json` file, or text that opens with `{`), so its help
/// lines are written in JSON too.
fn is_json(text: &str, file: Option<&Path>) -> bool {
    file.and_then(|f| f.extension())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with('{')
}

/// `key: value` in the file's syntax (`"key": value` in JSON).
fn pair(json: bool, key: &str, value: &str) -> String {
    if json {
        format!("\"{key}\": {value}")
    } else {
        format!("{key}: {value}")
    }
}

/// `["a", "b"]`.
fn json_list(items: &[String]) -> String {
    let items: Vec<String> = items
        .iter()
        .map(|i| serde_json::Value::String(i.clone()).to_string())
        .collect();
    format!("[{}]", items.join(", "))
}

/// The list a string meant: for `entrypoint` (a program and its arguments, run without a
/// shell) its shell words, `python -m app` -> `["python", "-m", "app"]`, since `["python -m
/// app"]` would run a program of that name; for other lists the string as one item.
fn meant_list(key: &str, text: &str) -> Vec<String> {
    if key == "entrypoint"
        && let Some(words) = shlex::split(text).filter(|w| !w.is_empty())
    {
        return words;
    }
    vec![text.to_string()]
}

/// The closest valid key, for "did you mean" help.
fn closest_key(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase().replace('-', "_");
    if let Some(f) = SpecField::from_key(&lower) {
        return Some(f.key());
    }
    SpecField::ALL
        .iter()
        .map(|f| (f.key(), strsim::jaro_winkler(&lower, f.key())))
        .filter(|(_, score)| *score > 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
}

struct Ctx<'a> {
    locations: &'a mut FieldLocations,
    diags: &'a mut Diagnostics,
}

impl Ctx<'_> {
    fn wrong_type(&mut self, field: &str, node: &Node, expected: &str, help: String) {
        self.diags.push(
            Diagnostic::new(
                DiagnosticKind::WrongType,
                field,
                format!("expected {expected}, found {}", kind_of(node)),
            )
            .at(loc(node))
            .with_help(help),
        );
    }

    fn string(&mut self, field: &str, node: &Node) -> Option<String> {
        self.locations.insert(field, loc(node));
        if is_null(node) {
            return None;
        }
        match node {
            Node::Scalar(s) => self.scalar_text(field, s),
            other => {
                let key = field.rsplit('.').next().unwrap_or(field).to_string();
                let help = format!("write `{}`", pair(self.diags.json, &key, "\"value\""));
                self.wrong_type(field, other, "a string", help);
                None
            }
        }
    }

    /// The text of a scalar where a string is wanted. A plain (unquoted) `.nan`, `NaN`, `.inf`,
    /// `-Infinity`... is refused: YAML 1.2 and JSON parsers (Python's `json`, which reads `NaN`)
    /// read it as a floating-point number, so keeping it as text would silently give the user
    /// something else than what other tools see. Quoted, it is text.
    fn scalar_text(&mut self, field: &str, s: &MarkedScalarNode) -> Option<String> {
        let text = s.as_str();
        if s.may_coerce() && is_special_float(text) {
            let key = field.rsplit('.').next().unwrap_or(field).to_string();
            self.diags.push(
                Diagnostic::new(
                    DiagnosticKind::WrongType,
                    field,
                    format!("expected a string, found the floating-point value `{text}`"),
                )
                .at(scalar_loc(s))
                .with_help(if key.ends_with(']') {
                    format!("quote it if you mean the text: `\"{text}\"`")
                } else {
                    format!("quote it if you mean the text: `{key}: \"{text}\"`")
                }),
            );
            return None;
        }
        Some(text.to_string())
    }

    /// An unquoted list item. pyflyte reads spec files with PyYAML (YAML 1.1), where `1`, `2.5`,
    /// `yes` or `~` are a number, a bool or `None`, and flytekit refuses a list holding one
    /// ("must be a list of strings"); taking its text would install `1` or run `yes`, so it is
    /// refused here too, with the quoted spelling as the fix. An empty item is left to the
    /// blank-entry rule of validation, which says to remove it.
    fn plain_list_item(
        &mut self,
        field: &str,
        item_field: &str,
        s: &MarkedScalarNode,
    ) -> Option<String> {
        use crate::hash::flytekit::pyrepr::PyValue;
        let text = s.as_str();
        let found = match crate::hash::flytekit::yaml11::resolve_plain(text) {
            Ok(PyValue::Bool(_)) => "a boolean",
            Ok(PyValue::Int(_)) => "an integer",
            Ok(PyValue::Float(_)) => "a number",
            Ok(PyValue::None) if !text.is_empty() => "null (no value)",
            _ => return Some(text.to_string()),
        };
        let key = field.rsplit('.').next().unwrap_or(field);
        self.diags.push(
            Diagnostic::new(
                DiagnosticKind::WrongType,
                item_field,
                format!("expected a string, found `{text}`, which YAML reads as {found}"),
            )
            .at(scalar_loc(s))
            .with_help(format!(
                "quote it: `\"{text}\"` (`{key}` is a list of strings, as in flytekit)"
            )),
        );
        None
    }

    fn string_list(&mut self, field: &str, node: &Node) -> Vec<String> {
        self.locations.insert(field, loc(node));
        if is_null(node) {
            return Vec::new();
        }
        match node {
            Node::Sequence(seq) => {
                let mut out = Vec::new();
                for (i, item) in seq.iter().enumerate() {
                    let item_field = format!("{field}[{i}]");
                    self.locations.insert(&item_field, loc(item));
                    match item {
                        Node::Scalar(s) if s.may_coerce() && !is_special_float(s.as_str()) => {
                            // A placeholder keeps later items at their index (see below).
                            out.push(
                                self.plain_list_item(field, &item_field, s)
                                    .unwrap_or_default(),
                            )
                        }
                        Node::Scalar(s) => {
                            // A placeholder keeps later items at their index (see below).
                            out.push(self.scalar_text(&item_field, s).unwrap_or_default())
                        }
                        other => {
                            self.wrong_type(
                                &item_field,
                                other,
                                "a string",
                                "each list item must be a plain string".into(),
                            );
                            // A placeholder keeps later items at their index, so validation
                            // reports them under the right field path.
                            out.push(String::new());
                        }
                    }
                }
                out
            }
            Node::Scalar(s) => {
                let key = field.rsplit('.').next().unwrap_or(field).to_string();
                let items = meant_list(&key, s.as_str());
                let list = pair(self.diags.json, &key, &json_list(&items));
                let help = match (self.diags.json, items.as_slice()) {
                    (true, _) => format!("write `{list}`"),
                    (false, [one]) => {
                        format!("write `{list}` or a YAML list with one `- {one}` line per item")
                    }
                    (false, _) => format!("write `{list}` or a YAML list, one `- item` line each"),
                };
                self.wrong_type(field, node, "a list of strings", help);
                Vec::new()
            }
            other => {
                let key = field.rsplit('.').next().unwrap_or(field).to_string();
                let help = if self.diags.json {
                    format!("write `{}`", pair(true, &key, "[\"item\"]"))
                } else {
                    format!("write `{key}:` followed by `- item` lines")
                };
                self.wrong_type(field, other, "a list of strings", help);
                Vec::new()
            }
        }
    }

    fn string_map(&mut self, field: &str, node: &Node) -> BTreeMap<String, String> {
        self.locations.insert(field, loc(node));
        let mut out = BTreeMap::new();
        if is_null(node) {
            return out;
        }
        match node {
            Node::Mapping(map) => {
                for (k, v) in map.iter() {
                    let item_field = format!("{field}.{}", k.as_str());
                    self.locations.insert(&item_field, loc(v));
                    match v {
                        Node::Scalar(s) => {
                            if let Some(text) = self.scalar_text(&item_field, s) {
                                out.insert(k.as_str().to_string(), text);
                            }
                        }
                        other => self.wrong_type(
                            &item_field,
                            other,
                            "a string",
                            "values of this mapping must be plain strings (quote numbers: \"1\")"
                                .into(),
                        ),
                    }
                }
            }
            other => {
                let key = field.rsplit('.').next().unwrap_or(field).to_string();
                let help = if self.diags.json {
                    format!("write `{}`", pair(true, &key, "{\"KEY\": \"value\"}"))
                } else {
                    format!("write `{key}:` followed by `  KEY: value` lines")
                };
                self.wrong_type(field, other, "a mapping", help);
            }
        }
        out
    }
}

fn decode_mapping(
    map: &MarkedMappingNode,
    prefix: &str,
    locations: &mut FieldLocations,
    diags: &mut Diagnostics,
) -> ImageSpec {
    let mut spec = ImageSpec::new("");
    let mut saw_name = false;
    for (key, value) in map.iter() {
        let field_path = join(prefix, key.as_str());
        let Some(field) = SpecField::from_key(key.as_str()) else {
            let mut d = Diagnostic::new(
                DiagnosticKind::UnknownKey,
                field_path.clone(),
                format!("unknown field `{}`", key.as_str()),
            )
            .at(scalar_loc(key));
            d.help = Some(match closest_key(key.as_str()) {
                Some(k) => format!("did you mean `{k}`?"),
                None => "see the README for the list of spec fields".into(),
            });
            diags.push(d);
            continue;
        };
        let mut cx = Ctx { locations, diags };
        let f = field_path.as_str();
        match field {
            SpecField::Name => {
                saw_name = true;
                // flytekit lower-cases the name, which fails on a number or a boolean; a quoted
                // "123" is a name.
                if let Node::Scalar(s) = value
                    && s.may_coerce()
                    && (s.as_str().parse::<f64>().is_ok()
                        || matches!(
                            s.as_str(),
                            "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
                        ))
                    && !is_special_float(s.as_str())
                {
                    cx.diags.push(
                        Diagnostic::new(
                            DiagnosticKind::WrongType,
                            f,
                            format!("expected a string, found `{}`, which YAML reads as a number or a boolean", s.as_str()),
                        )
                        .at(scalar_loc(s))
                        .with_help(format!("quote it: `name: \"{}\"`", s.as_str())),
                    );
                } else {
                    spec.name = cx.string(f, value).unwrap_or_default();
                }
            }
            SpecField::PythonVersion => spec.python_version = cx.string(f, value),
            SpecField::Builder => spec.builder = cx.string(f, value),
            SpecField::SourceRoot => spec.source_root = cx.string(f, value),
            SpecField::Env => spec.env = cx.string_map(f, value),
            SpecField::Registry => spec.registry = cx.string(f, value),
            SpecField::Packages => spec.packages = cx.string_list(f, value),
            SpecField::CondaPackages => spec.conda_packages = cx.string_list(f, value),
            SpecField::CondaChannels => spec.conda_channels = cx.string_list(f, value),
            SpecField::Requirements => spec.requirements = cx.string(f, value),
            SpecField::AptPackages => spec.apt_packages = cx.string_list(f, value),
            SpecField::Cuda => spec.cuda = cx.string(f, value),
            SpecField::Cudnn => spec.cudnn = cx.string(f, value),
            SpecField::BaseImage => spec.base_image = decode_base_image(&mut cx, f, value),
            SpecField::Platform => {
                if let Some(p) = cx.string(f, value) {
                    spec.platform = p;
                }
            }
            SpecField::PipIndex => spec.pip_index = cx.string(f, value),
            SpecField::PipExtraIndexUrl => {
                // flytekit accepts a single URL string here as well as a list.
                spec.pip_extra_index_url = match value {
                    Node::Scalar(s) if !is_null(value) => {
                        cx.locations.insert(f, loc(value));
                        cx.scalar_text(f, s).into_iter().collect()
                    }
                    _ => cx.string_list(f, value),
                }
            }
            SpecField::PipSecretMounts => {
                spec.pip_secret_mounts = decode_secret_mounts(&mut cx, f, value)
            }
            SpecField::PipExtraArgs => spec.pip_extra_args = cx.string(f, value),
            SpecField::RegistryConfig => spec.registry_config = cx.string(f, value),
            SpecField::Entrypoint => {
                spec.entrypoint = if is_null(value) {
                    None
                } else {
                    Some(cx.string_list(f, value))
                }
            }
            SpecField::Commands => spec.commands = cx.string_list(f, value),
            SpecField::TagFormat => spec.tag_format = cx.string(f, value),
            SpecField::SourceCopyMode => {
                spec.source_copy_mode = decode_copy_mode(&mut cx, f, value)
            }
            SpecField::Copy => spec.copy = cx.string_list(f, value),
            SpecField::PythonExec => spec.python_exec = cx.string(f, value),
            SpecField::RuntimePackages => spec.runtime_packages = cx.string_list(f, value),
            SpecField::BuilderOptions => {
                cx.locations.insert(f, loc(value));
                match value {
                    Node::Mapping(m) => {
                        spec.builder_options = m
                            .iter()
                            .map(|(k, v)| (k.as_str().to_string(), to_json(v)))
                            .collect();
                    }
                    _ if is_null(value) => {}
                    other => cx.wrong_type(
                        f,
                        other,
                        "a mapping",
                        "write `builder_options:` followed by `  key: value` lines".into(),
                    ),
                }
            }
            SpecField::BuilderConfig => spec.builder_config = cx.string_map(f, value),
        }
    }
    if !saw_name {
        // flytekit's `ImageSpec.name` defaults to "flytekit"; a flytekit spec file without a
        // name must load unchanged and name the same image.
        spec.name = DEFAULT_NAME.to_string();
    }
    spec
}

/// How deep `base_image` specs may nest: far more than any real chain, and few enough that the
/// recursive decoding, validation and hashing of a hostile file cannot exhaust the stack.
const MAX_BASE_SPEC_DEPTH: usize = 16;

fn decode_base_image(cx: &mut Ctx<'_>, field: &str, node: &Node) -> Option<BaseImage> {
    cx.locations.insert(field, loc(node));
    if is_null(node) {
        return None;
    }
    match node {
        Node::Scalar(s) => Some(BaseImage::Reference(s.as_str().to_string())),
        Node::Mapping(_) if field.matches("base_image").count() > MAX_BASE_SPEC_DEPTH => {
            cx.diags.push(
                Diagnostic::new(
                    DiagnosticKind::InvalidValue,
                    field,
                    format!("base specs are nested more than {MAX_BASE_SPEC_DEPTH} deep"),
                )
                .at(loc(node))
                .with_help("build the innermost bases separately and refer to them by image name"),
            );
            None
        }
        Node::Mapping(m) => {
            let base = decode_mapping(m, field, cx.locations, cx.diags);
            Some(BaseImage::Spec(Box::new(base)))
        }
        other => {
            cx.wrong_type(
                field,
                other,
                "an image reference or a spec mapping",
                "write `base_image: python:3.11-slim`, or a nested mapping with its own `name`"
                    .into(),
            );
            None
        }
    }
}

fn decode_secret_mounts(cx: &mut Ctx<'_>, field: &str, node: &Node) -> Vec<SecretMount> {
    cx.locations.insert(field, loc(node));
    let mut out = Vec::new();
    let Node::Sequence(seq) = node else {
        if !is_null(node) {
            cx.wrong_type(
                field,
                node,
                "a list of [source, destination] pairs",
                "write `pip_secret_mounts: [[\"env:PIP_TOKEN\", \"/run/secrets/pip_token\"]]`"
                    .into(),
            );
        }
        return out;
    };
    for (i, item) in seq.iter().enumerate() {
        let item_field = format!("{field}[{i}]");
        cx.locations.insert(&item_field, loc(item));
        let pair = match item {
            Node::Sequence(pair) if pair.len() == 2 => {
                match (pair.get_scalar(0), pair.get_scalar(1)) {
                    (Some(src), Some(dst)) => Some((src.as_str(), dst.as_str())),
                    _ => None,
                }
            }
            Node::Mapping(m) => match (m.get_scalar("src"), m.get_scalar("dst")) {
                (Some(src), Some(dst)) if m.len() == 2 => Some((src.as_str(), dst.as_str())),
                _ => None,
            },
            _ => None,
        };
        match pair {
            Some((src, dst)) => out.push(SecretMount {
                src: src.to_string(),
                dst: dst.to_string(),
            }),
            None => {
                cx.wrong_type(
                    &item_field,
                    item,
                    "a [source, destination] pair of strings",
                    "write `- [\"env:PIP_TOKEN\", \"/run/secrets/pip_token\"]` or `- {src: ..., dst: ...}`".into(),
                );
                // Keeps later items at their index (see `string_list`).
                out.push(SecretMount {
                    src: String::new(),
                    dst: String::new(),
                });
            }
        }
    }
    out
}

fn decode_copy_mode(cx: &mut Ctx<'_>, field: &str, node: &Node) -> Option<SourceCopyMode> {
    let raw = cx.string(field, node)?;
    let normalised = raw
        .trim()
        .to_ascii_lowercase()
        .replace("copyfiledetection.", "");
    match normalised.as_str() {
        "all" => Some(SourceCopyMode::All),
        "loaded_modules" => Some(SourceCopyMode::LoadedModules),
        "none" | "no_copy" => Some(SourceCopyMode::None),
        _ => {
            cx.diags.push(
                Diagnostic::new(
                    DiagnosticKind::InvalidValue,
                    field,
                    format!("unknown source copy mode `{raw}`"),
                )
                .at(loc(node))
                .with_help("use `all`, `loaded_modules` or `none`"),
            );
            None
        }
    }
}

/// Converts a YAML node to JSON: plain scalars that look like booleans or numbers become those.
fn to_json(node: &Node) -> serde_json::Value {
    match node {
        Node::Scalar(s) => {
            let text = s.as_str();
            if s.may_coerce() {
                match text {
                    "true" | "True" | "TRUE" => return serde_json::Value::Bool(true),
                    "false" | "False" | "FALSE" => return serde_json::Value::Bool(false),
                    "" | "~" | "null" | "Null" | "NULL" => return serde_json::Value::Null,
                    _ => {}
                }
                if let Ok(i) = text.parse::<i64>() {
                    return serde_json::Value::from(i);
                }
                if let Ok(f) = text.parse::<f64>()
                    && let Some(n) = serde_json::Number::from_f64(f)
                {
                    return serde_json::Value::Number(n);
                }
            }
            serde_json::Value::String(text.to_string())
        }
        Node::Sequence(seq) => serde_json::Value::Array(seq.iter().map(to_json).collect()),
        Node::Mapping(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().to_string(), to_json(v)))
                .collect(),
        ),
    }
}
