//! `google.api.http` path templates (the grammar in `google/api/http.proto`):
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! Verb     = ":" LITERAL ;
//! ```
//!
//! A template is parsed once at start-up; matching a request path walks its segments.

use std::fmt;

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Literal(String),
    /// `*`: exactly one segment.
    Star,
    /// `**`: the rest of the path (one segment or more); last only.
    DoubleStar,
}

/// A variable: the request field it fills and the segments `[start, end)` it spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Variable {
    pub(crate) field_path: Vec<String>,
    start: usize,
    end: usize,
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pub(crate) source: String,
    segments: Vec<Segment>,
    pub(crate) variables: Vec<Variable>,
    verb: Option<String>,
}

/// Why a template could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError(String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

impl Template {
    pub(crate) fn parse(source: &str) -> Result<Template, TemplateError> {
        let bad = |why: &str| TemplateError(format!("path template {source:?}: {why}"));
        let rest = source.strip_prefix('/').ok_or_else(|| bad("must start with /"))?;
        // The verb is a ':' outside braces after the last '/' outside braces.
        let (mut depth, mut last_slash, mut colon) = (0i32, None, None);
        for (i, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                '/' if depth == 0 => {
                    last_slash = Some(i);
                    colon = None;
                }
                ':' if depth == 0 => colon = Some(i),
                _ => {}
            }
        }
        if depth != 0 {
            return Err(bad("unbalanced braces"));
        }
        let (path, verb) = match colon {
            Some(i) if last_slash.is_none_or(|s| s < i) => (&rest[..i], Some(rest[i + 1..].to_owned())),
            _ => (rest, None),
        };
        if verb
            .as_deref()
            .is_some_and(|v| v.is_empty() || v.contains(['/', '{', '}', '*']))
        {
            return Err(bad("a verb is one literal"));
        }
        let mut segments = Vec::new();
        let mut variables = Vec::new();
        let mut chars = path;
        while !chars.is_empty() {
            if let Some(inner) = chars.strip_prefix('{') {
                let close = inner.find('}').ok_or_else(|| bad("unclosed variable"))?;
                let (field, pattern) = match inner[..close].split_once('=') {
                    Some((f, p)) => (f, p),
                    None => (&inner[..close], "*"),
                };
                if field.is_empty() || field.split('.').any(str::is_empty) {
                    return Err(bad("a variable names a field"));
                }
                let start = segments.len();
                for s in pattern.split('/') {
                    segments.push(segment(s).ok_or_else(|| bad("bad segment in a variable"))?);
                }
                variables.push(Variable {
                    field_path: field.split('.').map(str::to_owned).collect(),
                    start,
                    end: segments.len(),
                });
                chars = &inner[close + 1..];
            } else {
                let end = chars.find('/').unwrap_or(chars.len());
                segments.push(segment(&chars[..end]).ok_or_else(|| bad("bad segment"))?);
                chars = &chars[end..];
            }
            match chars.strip_prefix('/') {
                Some("") => return Err(bad("trailing /")),
                Some(after) => chars = after,
                None if chars.is_empty() => {}
                None => return Err(bad("expected / between segments")),
            }
        }
        if segments.is_empty() {
            return Err(bad("no segments"));
        }
        if segments[..segments.len() - 1].contains(&Segment::DoubleStar) {
            return Err(bad("** may only end a template"));
        }
        Ok(Template {
            source: source.to_owned(),
            segments,
            variables,
            verb,
        })
    }

    /// Whether the template ends in a custom method's verb (`…:cancel`).
    pub(crate) fn has_verb(&self) -> bool {
        self.verb.is_some()
    }

    /// Literal segments and verbs: a route with more of them is tried first, so
    /// `/v1/influencers:batchGet` wins over `/v1/{name=influencers/*}`.
    pub(crate) fn specificity(&self) -> (bool, usize) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        (self.verb.is_some(), literals)
    }

    /// The variables' values when `path` (without its query) matches, percent-decoded (a
    /// one-segment variable decodes `%2F` too; a longer one keeps its slashes).
    pub(crate) fn matches(&self, path: &str) -> Option<Vec<(Vec<String>, String)>> {
        let rest = path.strip_prefix('/')?;
        let rest = match &self.verb {
            Some(verb) => {
                let stripped = rest.strip_suffix(verb.as_str())?.strip_suffix(':')?;
                // The verb belongs to the last segment, never to a slash.
                if stripped.ends_with('/') {
                    return None;
                }
                stripped
            }
            None => rest,
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        // Where each template segment's match ends in `parts`.
        let mut ends = Vec::with_capacity(self.segments.len());
        let mut i = 0;
        for s in &self.segments {
            match s {
                Segment::Literal(l) => {
                    if parts.get(i).is_none_or(|p| decode(p) != *l) {
                        return None;
                    }
                    i += 1;
                }
                Segment::Star => {
                    parts.get(i)?;
                    i += 1;
                }
                Segment::DoubleStar => {
                    parts.get(i)?;
                    i = parts.len();
                }
            }
            ends.push(i);
        }
        if i != parts.len() {
            return None;
        }
        let values = self
            .variables
            .iter()
            .map(|v| {
                let from = if v.start == 0 { 0 } else { ends[v.start - 1] };
                let to = ends[v.end - 1];
                let value = if to - from == 1 {
                    decode(parts[from])
                } else {
                    parts[from..to]
                        .iter()
                        .map(|p| decode_keep_slash(p))
                        .collect::<Vec<_>>()
                        .join("/")
                };
                (v.field_path.clone(), value)
            })
            .collect();
        Some(values)
    }

    /// The template as an OpenAPI path, with a parameter per `*`: `/v1/{name=influencers/*}`
    /// is `/v1/influencers/{influencer_id}` (the parameter is the id; the gateway puts the
    /// whole `influencers/{id}` in the field). Returns the path and each parameter with the
    /// field it fills.
    pub(crate) fn openapi_path(&self) -> (String, Vec<(String, String)>) {
        let mut out = String::new();
        let mut params = Vec::new();
        for (i, s) in self.segments.iter().enumerate() {
            out.push('/');
            let var = self.variables.iter().find(|v| (v.start..v.end).contains(&i));
            match (s, var) {
                (Segment::Literal(l), _) => out.push_str(l),
                (_, Some(v)) => {
                    let field = v.field_path.join(".");
                    // A lone `{year}` is its field; a star after a literal is named after the
                    // collection (`influencers/*` → `influencer_id`), so two methods on one
                    // path name their parameter alike, as OpenAPI requires.
                    let name = match (i > v.start, i.checked_sub(1).map(|p| &self.segments[p])) {
                        (true, Some(Segment::Literal(l))) => format!("{}_id", l.strip_suffix('s').unwrap_or(l)),
                        _ if v.end - v.start == 1 => field.replace('.', "_"),
                        _ => format!("segment_{i}"),
                    };
                    out.push_str(&format!("{{{name}}}"));
                    params.push((name, field));
                }
                (_, None) => {
                    let name = format!("segment_{i}");
                    out.push_str(&format!("{{{name}}}"));
                    params.push((name, String::new()));
                }
            }
        }
        if let Some(verb) = &self.verb {
            out.push(':');
            out.push_str(verb);
        }
        (out, params)
    }

    /// The pattern a variable's value follows, as the template writes it (`influencers/*`).
    pub(crate) fn variable_pattern(&self, v: &Variable) -> String {
        self.segments[v.start..v.end]
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.as_str(),
                Segment::Star => "*",
                Segment::DoubleStar => "**",
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

fn segment(s: &str) -> Option<Segment> {
    match s {
        "" => None,
        "*" => Some(Segment::Star),
        "**" => Some(Segment::DoubleStar),
        l if l.contains(['{', '}', '=', '*']) => None,
        l => Some(Segment::Literal(l.to_owned())),
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Decodes all but `%2F`, so a multi-segment value keeps the slashes that were data.
fn decode_keep_slash(s: &str) -> String {
    s.split("%2F")
        .flat_map(|p| p.split("%2f"))
        .map(decode)
        .collect::<Vec<_>>()
        .join("%2F")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(t: &str, path: &str) -> Option<Vec<(String, String)>> {
        Template::parse(t)
            .unwrap_or_else(|e| panic!("{e}"))
            .matches(path)
            .map(|v| v.into_iter().map(|(f, v)| (f.join("."), v)).collect())
    }

    fn pair(f: &str, v: &str) -> (String, String) {
        (f.to_owned(), v.to_owned())
    }

    #[test]
    fn variables_take_their_segments() {
        assert_eq!(
            vars("/v1/{name=influencers/*}", "/v1/influencers/abc"),
            Some(vec![pair("name", "influencers/abc")])
        );
        assert_eq!(
            vars("/v1/{influencer.name=influencers/*}", "/v1/influencers/a%20b"),
            Some(vec![pair("influencer.name", "influencers/a b")])
        );
        assert_eq!(
            vars("/v1/taxReports/{year}", "/v1/taxReports/2026"),
            Some(vec![pair("year", "2026")])
        );
        assert_eq!(
            vars("/v1/{parent=campaigns/*}/shortlists", "/v1/campaigns/c1/shortlists"),
            Some(vec![pair("parent", "campaigns/c1")])
        );
        assert_eq!(
            vars("/v1/{name=files/**}", "/v1/files/a/b/c"),
            Some(vec![pair("name", "files/a/b/c")])
        );
    }

    #[test]
    fn verbs_literals_and_lengths_must_match() {
        assert_eq!(
            vars("/v1/influencers:batchGet", "/v1/influencers:batchGet"),
            Some(vec![])
        );
        assert_eq!(vars("/v1/influencers:batchGet", "/v1/influencers"), None);
        assert_eq!(
            vars("/v1/{account=ledgerAccounts/*}:balance", "/v1/ledgerAccounts/x:balance"),
            Some(vec![pair("account", "ledgerAccounts/x")])
        );
        assert_eq!(vars("/v1/{name=influencers/*}", "/v1/influencers"), None);
        assert_eq!(vars("/v1/{name=influencers/*}", "/v1/influencers/a/b"), None);
        assert_eq!(vars("/v1/{name=influencers/*}", "/v1/campaigns/a"), None);
        assert_eq!(vars("/v1/{name=influencers/*}", "/v1/influencers//"), None);
        assert_eq!(vars("/v1/influencers", "/v1/influencers/"), None);
    }

    #[test]
    fn bad_templates_are_refused() {
        for t in [
            "v1/x",
            "/v1/{name",
            "/v1/{=x}",
            "/v1/**/x",
            "/v1/x/",
            "/v1/x:",
            "/v1/{a..b}",
        ] {
            assert!(Template::parse(t).is_err(), "{t} parsed");
        }
    }

    #[test]
    fn openapi_paths_name_the_variables() {
        let t = Template::parse("/v1/{account=ledgerAccounts/*}:balance").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.openapi_path(),
            (
                "/v1/ledgerAccounts/{ledgerAccount_id}:balance".to_owned(),
                vec![("ledgerAccount_id".to_owned(), "account".to_owned())]
            )
        );
        assert_eq!(t.variable_pattern(&t.variables[0]), "ledgerAccounts/*");
        let t = Template::parse("/v1/taxReports/{year}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.openapi_path().0, "/v1/taxReports/{year}");
    }
}
