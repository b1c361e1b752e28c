//! The builder registry: builders registered once, selected by name or alias.

use std::sync::Arc;

use serde::Serialize;

use super::builder::{BuilderKind, ImageBuilder};

/// No builder answers to a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown builder `{name}`; {}available builders: {}",
    suggestion.as_ref().map(|s| format!("did you mean `{s}`? ")).unwrap_or_default(),
    available.join(", ")
)]
pub struct UnknownBuilder {
    pub name: String,
    /// The available name `name` is most likely a typo of.
    pub suggestion: Option<String>,
    pub available: Vec<String>,
}

/// The name among `candidates` that `name` is most likely a typo of (`dokcer` -> `docker`),
/// if any is close; never `name` itself.
pub fn closest_builder<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let wanted = name.trim().to_ascii_lowercase();
    candidates
        .into_iter()
        .filter(|c| *c != wanted)
        .map(|c| (c, strsim::jaro_winkler(&wanted, c)))
        .filter(|(_, score)| *score >= 0.85)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

/// A summary of a registered builder for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuilderInfo {
    pub name: String,
    pub aliases: Vec<String>,
    pub priority: i32,
    pub kind: BuilderKind,
    pub description: String,
}

/// The set of builders a program knows about.
#[derive(Clone, Default)]
pub struct BuilderRegistry {
    builders: Vec<Arc<dyn ImageBuilder>>,
}

impl std::fmt::Debug for BuilderRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.builders.iter().map(|b| b.name()))
            .finish()
    }
}

impl BuilderRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a builder; a later builder with the same name replaces the earlier one, so a
    /// library user can swap in their own implementation of a standard name.
    pub fn register(&mut self, builder: Arc<dyn ImageBuilder>) -> &mut Self {
        self.builders.retain(|b| b.name() != builder.name());
        self.builders.push(builder);
        self
    }

    /// Selects a builder by name or alias (case-insensitive).
    pub fn get(&self, name: &str) -> Result<Arc<dyn ImageBuilder>, UnknownBuilder> {
        let wanted = name.trim().to_ascii_lowercase();
        self.builders
            .iter()
            .find(|b| b.name() == wanted)
            .or_else(|| {
                self.builders
                    .iter()
                    .find(|b| b.aliases().contains(&wanted.as_str()))
            })
            .cloned()
            .ok_or_else(|| {
                let available = self.names();
                let known = self
                    .builders
                    .iter()
                    .flat_map(|b| std::iter::once(b.name()).chain(b.aliases().iter().copied()));
                UnknownBuilder {
                    name: name.to_string(),
                    suggestion: closest_builder(name, known).map(str::to_string),
                    available,
                }
            })
    }

    /// Whether `name` is an alias (not the primary name) of a builder.
    pub fn is_alias(&self, name: &str) -> bool {
        let wanted = name.trim().to_ascii_lowercase();
        !self.builders.iter().any(|b| b.name() == wanted)
            && self
                .builders
                .iter()
                .any(|b| b.aliases().contains(&wanted.as_str()))
    }

    /// The highest-priority builder (flytekit's rule when nothing else decides).
    pub fn highest_priority(&self) -> Option<Arc<dyn ImageBuilder>> {
        self.builders.iter().max_by_key(|b| b.priority()).cloned()
    }

    /// Primary names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.builders.iter().map(|b| b.name().to_string()).collect();
        names.sort();
        names
    }

    /// Every builder, highest priority first.
    pub fn list(&self) -> Vec<BuilderInfo> {
        let mut infos: Vec<BuilderInfo> = self
            .builders
            .iter()
            .map(|b| BuilderInfo {
                name: b.name().to_string(),
                aliases: b.aliases().iter().map(|a| a.to_string()).collect(),
                priority: b.priority(),
                kind: b.capabilities().kind,
                description: b.description().to_string(),
            })
            .collect();
        infos.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
        infos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_of_a_builder_name_is_recognised_and_others_are_not() {
        let names = [
            "default", "docker", "podman", "union", "noop", "envd", "remote",
        ];
        let shipped = || names.iter().copied();
        assert_eq!(closest_builder("dokcer", shipped()), Some("docker"));
        assert_eq!(closest_builder("Podmna", shipped()), Some("podman"));
        assert_ne!(closest_builder("docker", shipped()), Some("docker"));
        assert_eq!(closest_builder("kaniko", shipped()), None);
        let err = UnknownBuilder {
            name: "dokcer".into(),
            suggestion: Some("docker".into()),
            available: vec!["default".into(), "docker".into()],
        };
        assert_eq!(
            err.to_string(),
            "unknown builder `dokcer`; did you mean `docker`? available builders: default, docker"
        );
    }
}
