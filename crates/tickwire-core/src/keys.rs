//! Redis key templates: `ticks:{symbol}`, `volume:bucket:{symbol}:{session}:{HH}:{MM}`, ...
//!
//! A template is parsed once at start (unknown placeholders are a config error)
//! and rendered per key with the values a writer knows.

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "symbol",
    "exchange",
    "segment",
    "security_id",
    "session",
    "HH",
    "MM",
    "interval",
    "interval_minutes",
    "name",
    "feed",
    "instance",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(&'static str),
}

/// A parsed key template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyTemplate {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder `{{{0}}}` (known: {known})", known = PLACEHOLDERS.join(", "))]
    UnknownPlaceholder(String),
    #[error("unclosed `{{`")]
    Unclosed,
    #[error("must contain `{{{0}}}`")]
    Missing(&'static str),
    #[error("must not be empty")]
    Empty,
}

impl KeyTemplate {
    /// Parses `source`, checking every placeholder and that each of `required` occurs.
    pub fn parse(source: &str, required: &[&'static str]) -> Result<Self, TemplateError> {
        if source.is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or(TemplateError::Unclosed)?;
            let name = &after[..close];
            let known = PLACEHOLDERS
                .iter()
                .find(|p| **p == name)
                .ok_or_else(|| TemplateError::UnknownPlaceholder(name.to_string()))?;
            parts.push(Part::Var(known));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        for r in required {
            if !parts.contains(&Part::Var(r)) {
                return Err(TemplateError::Missing(r));
            }
        }
        Ok(Self {
            source: source.to_string(),
            parts,
        })
    }

    /// The placeholders it uses, in order.
    pub fn placeholders(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(*v),
            Part::Lit(_) => None,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Renders the key after `prefix`, asking `value` for each placeholder; a
    /// placeholder with no value renders as an empty string.
    pub fn render<'v>(&self, prefix: &str, value: impl Fn(&str) -> Option<&'v str>) -> String {
        let mut out = String::with_capacity(prefix.len() + self.source.len() + 16);
        out.push_str(prefix);
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var(name) => {
                    if let Some(v) = value(name) {
                        out.push_str(v);
                    }
                }
            }
        }
        out
    }

    /// Whether the template uses `{name}`.
    pub fn uses(&self, name: &str) -> bool {
        self.placeholders().any(|p| p == name)
    }

    /// Cluster mode: the first `{name}` renders inside braces, so its value
    /// is the key's hash tag (every key of one instrument in one slot). A
    /// template without `{name}` is left as it is.
    pub fn hash_tagged(mut self, name: &str) -> Self {
        if let Some(i) = self
            .parts
            .iter()
            .position(|p| matches!(p, Part::Var(v) if *v == name))
        {
            self.parts.insert(i + 1, Part::Lit("}".into()));
            self.parts.insert(i, Part::Lit("{".into()));
        }
        self
    }

    /// The key of one named process (`[process] instance`): every
    /// `{instance}` becomes `instance` (in braces when `tag`, a cluster's
    /// hash tag), and a template without one gets `:{instance}` appended.
    pub fn for_instance(mut self, instance: &str, tag: bool) -> Self {
        if !self.uses("instance") {
            self.parts.push(Part::Lit(":".into()));
            self.parts.push(Part::Var("instance"));
        }
        let value = if tag {
            format!("{{{instance}}}")
        } else {
            instance.to_string()
        };
        for part in &mut self.parts {
            if *part == Part::Var("instance") {
                *part = Part::Lit(value.clone());
            }
        }
        self
    }

    /// Puts `lit` before the rest of every rendered key (after the prefix).
    pub fn led_by(mut self, lit: &str) -> Self {
        self.parts.insert(0, Part::Lit(lit.to_string()));
        self
    }

    /// Renders with a single `{name}` value (the common case: `{symbol}`, `{feed}`).
    pub fn render_one(&self, prefix: &str, name: &str, v: &str) -> String {
        self.render(prefix, |n| (n == name).then_some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_prefix_and_values() {
        let t =
            KeyTemplate::parse("volume:bucket:{symbol}:{session}:{HH}:{MM}", &["symbol"]).unwrap();
        let k = t.render("bt:", |n| match n {
            "symbol" => Some("SBIN"),
            "session" => Some("2024-01-02"),
            "HH" => Some("09"),
            "MM" => Some("30"),
            _ => None,
        });
        assert_eq!(k, "bt:volume:bucket:SBIN:2024-01-02:09:30");
        assert_eq!(t.as_str(), "volume:bucket:{symbol}:{session}:{HH}:{MM}");
    }

    #[test]
    fn rejects_unknown_unclosed_and_missing() {
        assert_eq!(
            KeyTemplate::parse("ticks:{sym}", &[]),
            Err(TemplateError::UnknownPlaceholder("sym".into()))
        );
        assert_eq!(
            KeyTemplate::parse("ticks:{symbol", &[]),
            Err(TemplateError::Unclosed)
        );
        assert_eq!(
            KeyTemplate::parse("ticks", &["symbol"]),
            Err(TemplateError::Missing("symbol"))
        );
        assert_eq!(KeyTemplate::parse("", &[]), Err(TemplateError::Empty));
    }
}
