//! OpenAPI 3.1 from the descriptor set: every annotated RPC as an operation (its path from the
//! http rule, its parameters from the path variables and the request's other fields, its body
//! and answer as the proto3 JSON mapping writes them), every message and enum it reaches as a
//! schema, and the protos' comments (kept in the descriptor set's source info) as
//! descriptions. Built once at start, like the routes, from the same rules.

use std::collections::{BTreeMap, HashMap};

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use crate::routes::{Route, Routes};

/// Comments by (file, source path).
struct Comments(HashMap<(String, Vec<i32>), String>);

impl Comments {
    fn new(pool: &DescriptorPool) -> Comments {
        let mut map = HashMap::new();
        for file in pool.files() {
            let Some(info) = &file.file_descriptor_proto().source_code_info else {
                continue;
            };
            for loc in &info.location {
                let text = loc.leading_comments().trim();
                if !text.is_empty() {
                    let text = text.lines().map(str::trim).collect::<Vec<_>>().join("\n");
                    map.insert((file.name().to_owned(), loc.path.clone()), text);
                }
            }
        }
        Comments(map)
    }

    fn of(&self, file: &str, path: &[i32]) -> Option<&str> {
        self.0.get(&(file.to_owned(), path.to_vec())).map(String::as_str)
    }

    fn message(&self, m: &MessageDescriptor) -> Option<&str> {
        self.of(m.parent_file().name(), m.path())
    }

    fn field(&self, f: &FieldDescriptor) -> Option<&str> {
        self.of(f.parent_message().parent_file().name(), f.path())
    }
}

/// A request body may be left out: as in Google's HTTP transcoding, no body is the empty
/// message (`{}`), and the service names the fields it needed.
const EMPTY_BODY: &str = "Optional: no body is the empty message `{}`.";

/// The document.
pub(crate) fn document(pool: &DescriptorPool, routes: &Routes) -> Value {
    let comments = Comments::new(pool);
    let mut schemas = Schemas {
        comments: &comments,
        out: BTreeMap::new(),
    };
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    let anonymous = chorus_kit::auth::anonymous::anonymous_in(pool);
    for route in &routes.routes {
        let (path, mut op) = operation(route, &comments, &mut schemas, &mut ids);
        let rpc = &route.rpc;
        if anonymous.contains(&format!("/{}/{}", rpc.parent_service().full_name(), rpc.name())) {
            // Answers without a token (`allow_anonymous` in its proto).
            op["security"] = json!([]);
        }
        paths
            .entry(path)
            .or_default()
            .insert(route.method.as_str().to_ascii_lowercase(), op);
    }
    schemas.message(&status(pool));
    let mut tags: Vec<Value> = Vec::new();
    for s in pool.services() {
        if routes.routes.iter().any(|r| *r.rpc.parent_service() == s) {
            let mut tag = json!({ "name": s.name() });
            if let Some(d) = comments.of(s.parent_file().name(), s.path()) {
                tag["description"] = d.into();
            }
            tags.push(tag);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Chorus API",
            "version": "v1",
            "description": "Every Chorus service over HTTP/JSON, transcoded by the gateway from the services' gRPC APIs (proto3 JSON mapping: 64-bit integers as strings, enums by name, timestamps in RFC 3339). Errors are google.rpc.Status objects with the HTTP status of their code (AIP-193). Server-streaming methods answer a JSON array, or newline-delimited JSON with `Accept: application/x-ndjson`. gRPC-Web is served on the same port at /{package.Service}/{Method}."
        },
        "tags": tags,
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" }
            },
            "schemas": schemas.out,
        },
    })
}

fn status(pool: &DescriptorPool) -> MessageDescriptor {
    #[allow(clippy::expect_used)] // the pool was checked for it at start (Errors::new)
    pool.get_message_by_name("google.rpc.Status")
        .expect("google.rpc.Status")
}

fn reference(full_name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{full_name}") })
}

fn operation(
    route: &Route,
    comments: &Comments,
    schemas: &mut Schemas<'_>,
    ids: &mut HashMap<String, usize>,
) -> (String, Value) {
    let rpc = &route.rpc;
    let input = rpc.input();
    let (path, path_params) = route.template.openapi_path();
    let base_id = format!("{}_{}", rpc.parent_service().name(), rpc.name());
    let n = ids.entry(base_id.clone()).or_insert(0);
    *n += 1;
    let id = match *n {
        1 => base_id,
        n => format!("{base_id}_{n}"),
    };
    let mut parameters: Vec<Value> = path_params
        .iter()
        .map(|(name, field)| {
            let pattern = route
                .template
                .variables
                .iter()
                .find(|v| v.field_path.join(".") == *field)
                .map(|v| route.template.variable_pattern(v))
                .unwrap_or_default();
            json!({
                "name": name,
                "in": "path",
                "required": true,
                "description": format!("Fills `{field}` (`{pattern}`)."),
                "schema": { "type": "string", "pattern": "^[^/]+$" },
            })
        })
        .collect();
    let in_path: Vec<String> = route
        .template
        .variables
        .iter()
        .map(|v| v.field_path.join("."))
        .collect();
    if route.body.as_deref() != Some("*") {
        let mut leaves = Vec::new();
        query_leaves(&input, "", route.body.as_deref(), &in_path, 0, &mut leaves);
        for (name, field) in leaves {
            let mut schema = schemas.field(&field);
            if let Some(d) = comments.field(&field) {
                schema["description"] = d.into();
            }
            parameters.push(json!({ "name": name, "in": "query", "required": false, "schema": schema }));
        }
    }
    let mut op = json!({
        "operationId": id,
        "tags": [rpc.parent_service().name()],
        "parameters": parameters,
    });
    if let Some(doc) = comments.of(rpc.parent_file().name(), rpc.path()) {
        let summary = doc
            .split(". ")
            .next()
            .unwrap_or(doc)
            .lines()
            .collect::<Vec<_>>()
            .join(" ");
        op["summary"] = summary.trim_end_matches('.').into();
        op["description"] = doc.into();
    } else {
        op["summary"] = rpc.name().into();
    }
    match route.body.as_deref() {
        Some("*") => {
            schemas.message(&input);
            op["requestBody"] = json!({
                "required": false,
                "description": EMPTY_BODY,
                "content": { "application/json": { "schema": reference(input.full_name()) } },
            });
        }
        Some(field) => {
            if let Some(f) = input.get_field_by_name(field) {
                op["requestBody"] = json!({
                    "required": false,
                    "description": EMPTY_BODY,
                    "content": { "application/json": { "schema": schemas.field(&f) } },
                });
            }
        }
        None => {}
    }
    let output = rpc.output();
    let answer = match route.response_body.as_deref().and_then(|f| output.get_field_by_name(f)) {
        Some(f) => schemas.field(&f),
        None => {
            schemas.message(&output);
            reference(output.full_name())
        }
    };
    let content = match rpc.is_server_streaming() {
        true => json!({
            "application/json": { "schema": { "type": "array", "items": answer } },
            "application/x-ndjson": { "schema": answer },
        }),
        false => json!({ "application/json": { "schema": answer } }),
    };
    op["responses"] = json!({
        "200": { "description": "OK", "content": content },
        "default": {
            "description": "An error: google.rpc.Status with details (ErrorInfo, BadRequest field violations, RetryInfo)",
            "content": { "application/json": { "schema": reference("google.rpc.Status") } },
        },
    });
    (path, op)
}

/// The request fields a query can carry: scalars, enums, repeated scalars and well-known
/// types written as strings, named by their dotted proto paths; not those in the path or the
/// body.
fn query_leaves(
    m: &MessageDescriptor,
    prefix: &str,
    body: Option<&str>,
    in_path: &[String],
    depth: usize,
    out: &mut Vec<(String, FieldDescriptor)>,
) {
    for f in m.fields() {
        let name = format!("{prefix}{}", f.name());
        if in_path.contains(&name) || (prefix.is_empty() && body == Some(f.name())) || f.is_map() {
            continue;
        }
        match f.kind() {
            Kind::Message(inner) if !string_like(inner.full_name()) => {
                if !f.is_list() && depth < 3 {
                    query_leaves(&inner, &format!("{name}."), body, in_path, depth + 1, out);
                }
            }
            _ => out.push((name, f)),
        }
    }
}

fn string_like(name: &str) -> bool {
    matches!(
        name,
        "google.protobuf.Timestamp" | "google.protobuf.Duration" | "google.protobuf.FieldMask"
    ) || (name.starts_with("google.protobuf.") && name.ends_with("Value") && name != "google.protobuf.Value")
}

/// The component schemas reached so far.
struct Schemas<'a> {
    comments: &'a Comments,
    out: BTreeMap<String, Value>,
}

impl Schemas<'_> {
    /// The schema of a field's JSON value (a reference for messages and enums).
    fn field(&mut self, f: &FieldDescriptor) -> Value {
        if f.is_map() {
            let Kind::Message(entry) = f.kind() else {
                return json!({});
            };
            let value = self.single(&entry.map_entry_value_field());
            return json!({ "type": "object", "additionalProperties": value });
        }
        let one = self.single(f);
        match f.is_list() {
            true => json!({ "type": "array", "items": one }),
            false => one,
        }
    }

    fn single(&mut self, f: &FieldDescriptor) -> Value {
        match f.kind() {
            Kind::Double | Kind::Float => json!({ "type": "number" }),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => json!({ "type": "integer", "format": "int32" }),
            Kind::Uint32 | Kind::Fixed32 => json!({ "type": "integer", "format": "int64", "minimum": 0 }),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({ "type": "string", "format": "int64", "pattern": "^-?[0-9]+$" })
            }
            Kind::Uint64 | Kind::Fixed64 => json!({ "type": "string", "format": "uint64", "pattern": "^[0-9]+$" }),
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::String => json!({ "type": "string" }),
            Kind::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
            Kind::Enum(e) => {
                if !self.out.contains_key(e.full_name()) {
                    let names: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
                    // Answers always use the name; requests may use the number, as the proto3
                    // JSON mapping's parsers accept both.
                    let mut schema = json!({ "anyOf": [
                        { "type": "string", "enum": names },
                        { "type": "integer", "format": "int32", "description": "The value's number." },
                    ] });
                    if let Some(d) = self.comments.of(e.parent_file().name(), e.path()) {
                        schema["description"] = d.into();
                    }
                    self.out.insert(e.full_name().to_owned(), schema);
                }
                reference(e.full_name())
            }
            Kind::Message(m) => {
                if let Some(wkt) = well_known(m.full_name()) {
                    return wkt;
                }
                self.message(&m);
                reference(m.full_name())
            }
        }
    }

    /// Adds a message's schema (and those it reaches).
    fn message(&mut self, m: &MessageDescriptor) {
        if self.out.contains_key(m.full_name()) {
            return;
        }
        // Inserted first, so a message that contains itself stops here.
        self.out.insert(m.full_name().to_owned(), json!({}));
        let mut properties = Map::new();
        for f in m.fields() {
            let mut schema = self.field(&f);
            if let Some(d) = self.comments.field(&f) {
                schema = match schema.get("$ref") {
                    Some(_) => json!({ "allOf": [schema], "description": d }),
                    None => {
                        schema["description"] = d.into();
                        schema
                    }
                };
            }
            properties.insert(f.json_name().to_owned(), schema);
        }
        let mut schema = json!({ "type": "object", "properties": properties });
        if m.full_name() == "google.protobuf.Any" {
            schema = json!({
                "type": "object",
                "properties": { "@type": { "type": "string" } },
                "required": ["@type"],
                "additionalProperties": true,
            });
        }
        if let Some(d) = self.comments.message(m) {
            schema["description"] = d.into();
        }
        self.out.insert(m.full_name().to_owned(), schema);
    }
}

fn well_known(name: &str) -> Option<Value> {
    Some(match name {
        "google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
        "google.protobuf.Duration" => json!({ "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$" }),
        "google.protobuf.FieldMask" => {
            json!({ "type": "string", "description": "Comma-separated lowerCamelCase field paths." })
        }
        "google.protobuf.Struct" => json!({ "type": "object" }),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({ "type": "array" }),
        "google.protobuf.Empty" => json!({ "type": "object" }),
        "google.protobuf.StringValue" => json!({ "type": ["string", "null"] }),
        "google.protobuf.BytesValue" => json!({ "type": ["string", "null"], "contentEncoding": "base64" }),
        "google.protobuf.BoolValue" => json!({ "type": ["boolean", "null"] }),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => json!({ "type": ["integer", "null"] }),
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => json!({ "type": ["string", "null"] }),
        "google.protobuf.FloatValue" | "google.protobuf.DoubleValue" => json!({ "type": ["number", "null"] }),
        _ => return None,
    })
}

/// The `/docs` page: every operation, its method and path and summary, and a link to the
/// document. Plain HTML, nothing fetched from elsewhere.
pub(crate) fn page(document: &Value) -> String {
    let mut rows = String::new();
    let mut ops: Vec<(String, String, String, String)> = Vec::new();
    if let Some(paths) = document["paths"].as_object() {
        for (path, methods) in paths {
            for (method, op) in methods.as_object().into_iter().flatten() {
                ops.push((
                    op["tags"][0].as_str().unwrap_or_default().to_owned(),
                    method.to_ascii_uppercase(),
                    path.clone(),
                    op["description"]
                        .as_str()
                        .or(op["summary"].as_str())
                        .unwrap_or_default()
                        .to_owned(),
                ));
            }
        }
    }
    ops.sort();
    let mut current = String::new();
    for (tag, method, path, summary) in ops {
        if tag != current {
            rows.push_str(&format!(
                "<tr><th colspan=\"3\" id=\"{0}\">{0}</th></tr>\n",
                escape(&tag)
            ));
            current = tag;
        }
        rows.push_str(&format!(
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>\n",
            method,
            escape(&path),
            escape(&summary).replace('\n', "<br>")
        ));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Chorus API</title>\n\
         <style>body{{font-family:sans-serif;margin:2em;max-width:70em}}td,th{{padding:.3em .6em;text-align:left;vertical-align:top}}th{{background:#eee}}</style></head>\n\
         <body><h1>Chorus API</h1>\n<p>{}</p>\n<p>The machine-readable description: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI 3.1). \
         Send <code>Authorization: Bearer &lt;token&gt;</code>; mutating calls may send <code>Idempotency-Key</code>.</p>\n\
         <table>\n{rows}</table></body></html>\n",
        escape(document["info"]["description"].as_str().unwrap_or_default())
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
