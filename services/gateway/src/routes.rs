//! The route table, built once at start from every method's `google.api.http` rule in the
//! descriptor set: no route is written by hand, so a new service's annotated methods are
//! served as soon as its protos are compiled in and its upstream is configured.

use std::collections::BTreeSet;

use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, Value};

use crate::template::Template;

/// One HTTP binding of one RPC.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub(crate) method: http::Method,
    pub(crate) template: Template,
    pub(crate) rpc: MethodDescriptor,
    /// `body`: `None` (no body), `Some("*")` (the whole request), or a field name.
    pub(crate) body: Option<String>,
    /// `response_body`: the response field sent as the body, when not the whole response.
    pub(crate) response_body: Option<String>,
}

impl Route {
    /// `/chorus.registry.v1.RegistryService/GetInfluencer`.
    pub(crate) fn grpc_path(&self) -> String {
        grpc_path(&self.rpc)
    }
}

pub(crate) fn grpc_path(rpc: &MethodDescriptor) -> String {
    format!("/{}/{}", rpc.parent_service().full_name(), rpc.name())
}

/// Every route, most specific first.
#[derive(Debug, Clone)]
pub(crate) struct Routes {
    pub(crate) routes: Vec<Route>,
}

/// What the table says about a request.
#[derive(Debug)]
pub(crate) enum Found<'a> {
    Route(&'a Route, Vec<(Vec<String>, String)>),
    /// The path exists with other methods (for `Allow`).
    WrongMethod(BTreeSet<String>),
    NoRoute,
}

impl Routes {
    /// Reads every method's rule (and its `additional_bindings`). A malformed rule stops the
    /// start, naming the method.
    pub(crate) fn build(pool: &DescriptorPool) -> Result<Routes, String> {
        let Some(http) = pool.get_extension_by_name("google.api.http") else {
            return Err("the descriptor set lacks google.api.http (google/api/annotations.proto)".into());
        };
        let mut routes = Vec::new();
        for service in pool.services() {
            for rpc in service.methods() {
                let options = rpc.options();
                if !options.has_extension(&http) {
                    continue;
                }
                let rule = options.get_extension(&http);
                let Some(rule) = rule.as_message() else { continue };
                let mut rules = vec![rule.clone()];
                if let Some(Value::List(more)) = rule.get_field_by_name("additional_bindings").as_deref() {
                    rules.extend(more.iter().filter_map(|v| v.as_message().cloned()));
                }
                for rule in rules {
                    routes.push(route(&rpc, &rule).map_err(|e| format!("{}: {e}", rpc.full_name()))?);
                }
            }
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.template.specificity()));
        Ok(Routes { routes })
    }

    /// The route of `method` and `path`. A path a custom method's template matches
    /// (`/v1/offers/x:accept`) is that custom method's and no other: read as a standard
    /// method's, it would name a resource `offers/x:accept`, which no id spells (ids are UUIDs),
    /// so `Allow` lists only the custom method's HTTP method.
    pub(crate) fn find(&self, method: &http::Method, path: &str) -> Found<'_> {
        let custom = self
            .routes
            .iter()
            .any(|r| r.template.has_verb() && r.template.matches(path).is_some());
        let mut allowed = BTreeSet::new();
        for r in self.routes.iter().filter(|r| r.template.has_verb() == custom) {
            if let Some(vars) = r.template.matches(path) {
                if r.method == method {
                    return Found::Route(r, vars);
                }
                allowed.insert(r.method.to_string());
            }
        }
        match allowed.is_empty() {
            true => Found::NoRoute,
            false => Found::WrongMethod(allowed),
        }
    }
}

fn text(rule: &DynamicMessage, field: &str) -> Option<String> {
    match rule.get_field_by_name(field).as_deref() {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn route(rpc: &MethodDescriptor, rule: &DynamicMessage) -> Result<Route, String> {
    let mut pattern = None;
    for (field, method) in [
        ("get", http::Method::GET),
        ("put", http::Method::PUT),
        ("post", http::Method::POST),
        ("delete", http::Method::DELETE),
        ("patch", http::Method::PATCH),
    ] {
        if let Some(path) = text(rule, field) {
            pattern = Some((method, path));
        }
    }
    if pattern.is_none()
        && let Some(Value::Message(custom)) = rule.get_field_by_name("custom").as_deref()
        && let (Some(kind), Some(path)) = (text(custom, "kind"), text(custom, "path"))
    {
        let method = http::Method::from_bytes(kind.as_bytes()).map_err(|e| format!("custom method {kind:?}: {e}"))?;
        pattern = Some((method, path));
    }
    let (method, path) = pattern.ok_or("an http rule without a method and path")?;
    let template = Template::parse(&path).map_err(|e| e.to_string())?;
    let input = rpc.input();
    for v in &template.variables {
        field_at(&input, &v.field_path).ok_or_else(|| format!("{path}: no field {}", v.field_path.join(".")))?;
    }
    let body = text(rule, "body");
    if let Some(b) = body.as_deref().filter(|b| *b != "*") {
        input
            .get_field_by_name(b)
            .ok_or_else(|| format!("body {b:?} is not a field of {}", input.full_name()))?;
    }
    let response_body = text(rule, "response_body");
    if let Some(b) = &response_body {
        rpc.output()
            .get_field_by_name(b)
            .ok_or_else(|| format!("response_body {b:?} is not a field of {}", rpc.output().full_name()))?;
    }
    if rpc.is_client_streaming() {
        return Err("client-streaming methods are gRPC-only; remove the http rule".into());
    }
    Ok(Route {
        method,
        template,
        rpc: rpc.clone(),
        body,
        response_body,
    })
}

/// The field a dotted path names, through singular message fields.
pub(crate) fn field_at(
    message: &prost_reflect::MessageDescriptor,
    path: &[String],
) -> Option<prost_reflect::FieldDescriptor> {
    let (last, parents) = path.split_last()?;
    let mut m = message.clone();
    for p in parents {
        let f = m.get_field_by_name(p).or_else(|| m.get_field_by_json_name(p))?;
        match f.kind() {
            prost_reflect::Kind::Message(inner) if !f.is_list() && !f.is_map() => m = inner,
            _ => return None,
        }
    }
    m.get_field_by_name(last).or_else(|| m.get_field_by_json_name(last))
}
