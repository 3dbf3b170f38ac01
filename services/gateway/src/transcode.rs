//! HTTP/JSON to gRPC and back, for one matched route: the request message is built from the
//! body, the path variables and the query (in that order, later ones winning), checked and
//! converted by prost-reflect's proto3 JSON mapping in one pass; the answer is the response
//! (or its `response_body` field) in proto3 JSON.

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, SerializeOptions};
use serde_json::{Map, Value};

use crate::routes::{Route, field_at};

/// A request the gateway refuses before calling anyone: a message, and the field it names.
#[derive(Debug)]
pub(crate) struct BadRequest {
    pub(crate) message: String,
    pub(crate) field: Option<String>,
}

impl BadRequest {
    fn new(message: impl Into<String>) -> Self {
        BadRequest {
            message: message.into(),
            field: None,
        }
    }

    fn field(field: &str, message: impl Into<String>) -> Self {
        BadRequest {
            message: message.into(),
            field: Some(field.to_owned()),
        }
    }
}

/// The request message of `route` from the parts of an HTTP request.
pub(crate) fn request(
    route: &Route,
    vars: &[(Vec<String>, String)],
    query: Option<&str>,
    body: &[u8],
) -> Result<DynamicMessage, BadRequest> {
    let input = route.rpc.input();
    let mut root = Map::new();
    let has_body = !body.iter().all(u8::is_ascii_whitespace);
    match route.body.as_deref() {
        None if has_body => {
            return Err(BadRequest::new(format!(
                "{} {} takes no body",
                route.method, route.template.source
            )));
        }
        None => {}
        Some(_) if !has_body => {}
        Some("*") => match serde_json::from_slice(body) {
            Ok(Value::Object(m)) => root = m,
            Ok(_) => return Err(BadRequest::new("the body must be a JSON object")),
            Err(e) => return Err(BadRequest::new(format!("malformed JSON body: {e}"))),
        },
        Some(field) => {
            let value =
                serde_json::from_slice(body).map_err(|e| BadRequest::new(format!("malformed JSON body: {e}")))?;
            root.insert(field.to_owned(), value);
        }
    }
    for (path, value) in vars {
        let Some(field) = field_at(&input, path) else {
            return Err(BadRequest::new(format!("no field {}", path.join("."))));
        };
        let json = scalar(&field, value).map_err(|e| BadRequest::field(&path.join("."), e))?;
        set(&mut root, &input, path, json, false).map_err(|e| BadRequest::field(&path.join("."), e))?;
    }
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let path: Vec<String> = key.split('.').map(str::to_owned).collect();
        let field = match route.body.as_deref() {
            Some("*") => None,
            _ => field_at(&input, &path),
        };
        let Some(field) = field else {
            return Err(BadRequest::field(&key, format!("unknown query parameter {key:?}")));
        };
        if route
            .body
            .as_deref()
            .is_some_and(|b| b == path[0] || input.get_field_by_json_name(&path[0]).is_some_and(|f| f.name() == b))
        {
            return Err(BadRequest::field(
                &key,
                format!("{key:?} is in the body, not the query"),
            ));
        }
        if vars.iter().any(|(p, _)| same_path(&input, p, &path)) {
            return Err(BadRequest::field(
                &key,
                format!("{key:?} is in the path, not the query"),
            ));
        }
        if matches!(field.kind(), Kind::Message(m) if !well_known(&m)) || field.is_map() {
            return Err(BadRequest::field(
                &key,
                format!("{key:?} is a message: name its fields (a.b=...)"),
            ));
        }
        let json = scalar(&field, &value).map_err(|e| BadRequest::field(&key, e))?;
        set(&mut root, &input, &path, json, field.is_list()).map_err(|e| BadRequest::field(&key, e))?;
    }
    DynamicMessage::deserialize(input, Value::Object(root))
        .map_err(|e| BadRequest::new(format!("invalid request: {e}")))
}

fn same_path(m: &MessageDescriptor, a: &[String], b: &[String]) -> bool {
    let names = |p: &[String]| -> Option<Vec<String>> {
        let mut out = Vec::new();
        for i in 1..=p.len() {
            out.push(field_at(m, &p[..i])?.name().to_owned());
        }
        Some(out)
    };
    names(a).is_some_and(|x| Some(x) == names(b))
}

/// Messages whose JSON form is a string (or a number or bool), so a query parameter can carry
/// them.
fn well_known(m: &MessageDescriptor) -> bool {
    matches!(
        m.full_name(),
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
            | "google.protobuf.BoolValue"
            | "google.protobuf.Int32Value"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.FloatValue"
            | "google.protobuf.DoubleValue"
    )
}

/// The JSON value of one text value (a path segment or a query parameter) for `field`, in the
/// form the proto3 JSON mapping reads.
fn scalar(field: &FieldDescriptor, text: &str) -> Result<Value, String> {
    let kind = match field.kind() {
        Kind::Message(m) => match m.full_name() {
            "google.protobuf.BoolValue" => Kind::Bool,
            "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => Kind::Double,
            "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => Kind::Int32,
            _ => return Ok(Value::String(text.to_owned())),
        },
        k => k,
    };
    Ok(match kind {
        Kind::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(format!("expected true or false, got {text:?}")),
        },
        Kind::Double | Kind::Float => match text.parse::<f64>() {
            Ok(n) if n.is_finite() => {
                serde_json::Number::from_f64(n).map_or(Value::String(text.to_owned()), Value::Number)
            }
            _ => Value::String(text.to_owned()),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => match text.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => return Err(format!("expected an integer, got {text:?}")),
        },
        Kind::Enum(_) => match text.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::String(text.to_owned()),
        },
        // 64-bit integers, strings, bytes (base64): strings in proto3 JSON.
        _ => Value::String(text.to_owned()),
    })
}

/// Puts `value` at `path` in the JSON object, under each field's proto name (removing the
/// lowerCamelCase spelling of the same field a body may have used); `append` adds to a list.
fn set(
    root: &mut Map<String, Value>,
    message: &MessageDescriptor,
    path: &[String],
    value: Value,
    append: bool,
) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        return Err("an empty field path".into());
    };
    let field = message
        .get_field_by_name(first)
        .or_else(|| message.get_field_by_json_name(first))
        .ok_or_else(|| format!("no field {first:?} in {}", message.full_name()))?;
    let name = field.name().to_owned();
    if field.json_name() != name
        && let Some(v) = root.remove(field.json_name())
    {
        root.entry(name.clone()).or_insert(v);
    }
    if rest.is_empty() {
        if append {
            match root.entry(name).or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(items) => items.push(value),
                _ => return Err(format!("{first} is a list")),
            }
        } else {
            root.insert(name, value);
        }
        return Ok(());
    }
    let Kind::Message(inner) = field.kind() else {
        return Err(format!("{first} is not a message"));
    };
    match root.entry(name).or_insert_with(|| Value::Object(Map::new())) {
        Value::Object(child) => set(child, &inner, rest, value, append),
        _ => Err(format!("{first} must be an object")),
    }
}

/// The JSON body of an answer: the response, or its `response_body` field.
pub(crate) fn response(route: &Route, bytes: &[u8]) -> Result<Vec<u8>, tonic::Status> {
    let message = DynamicMessage::decode(route.rpc.output(), bytes)
        .map_err(|e| tonic::Status::internal(format!("the upstream's answer does not decode: {e}")))?;
    let options = SerializeOptions::new();
    let mut out = Vec::with_capacity(bytes.len() * 2);
    let mut serializer = serde_json::Serializer::new(&mut out);
    let written = match route.response_body.as_deref() {
        Some(field) => match message.get_field_by_name(field).as_deref() {
            Some(prost_reflect::Value::Message(inner)) => inner.serialize_with_options(&mut serializer, &options),
            _ => {
                let whole = message
                    .serialize_with_options(serde_json::value::Serializer, &options)
                    .map_err(|e| tonic::Status::internal(format!("JSON of the answer: {e}")))?;
                let json_name = route
                    .rpc
                    .output()
                    .get_field_by_name(field)
                    .map(|f| f.json_name().to_owned());
                let part = json_name.and_then(|n| whole.get(n).cloned()).unwrap_or(Value::Null);
                return serde_json::to_vec(&part).map_err(|e| tonic::Status::internal(e.to_string()));
            }
        },
        None => message.serialize_with_options(&mut serializer, &options),
    };
    written.map_err(|e| tonic::Status::internal(format!("JSON of the answer: {e}")))?;
    Ok(out)
}
