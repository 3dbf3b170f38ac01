//! The OpenAPI document the gateway serves: every annotated RPC is an operation, every
//! reference resolves, every path parameter is declared, and the protos' comments are there.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use serde_json::{Value, json};

async fn document() -> (Value, String) {
    let gateway = common::start_gateway(vec![("CHORUS_GATEWAY_ADDR".into(), "127.0.0.1:0".into())]).await;
    let base = format!("http://{}", gateway.addr);
    let response = reqwest::get(format!("{base}/openapi.json")).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let doc: Value = response.json().await.unwrap();
    let page = reqwest::get(format!("{base}/docs")).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    gateway.shutdown().await.unwrap();
    (doc, html)
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_describes_every_annotated_rpc() {
    let (doc, html) = document().await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert_eq!(doc["security"], json!([{ "bearer": [] }]));

    // The methods whose protos allow anonymous callers say so, and only they.
    let anonymous: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .iter()
                .filter(|(_, op)| op.get("security") == Some(&json!([])))
                .map(move |(method, _)| (method.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("get", "/v1/contracts/sealingKeys"),
        ("get", "/v1/jwks"),
        ("post", "/v1/token"),
    ]
    .iter()
    .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
    .collect();
    assert_eq!(anonymous, expected);

    // Every method with a google.api.http rule, read independently from the descriptor set.
    let pool = chorus_gateway::pool().unwrap();
    let http = pool.get_extension_by_name("google.api.http").unwrap();
    let mut expected = BTreeSet::new();
    for s in pool.services() {
        for m in s.methods() {
            if m.options().has_extension(&http) {
                expected.insert(format!("{}_{}", s.name(), m.name()));
            }
        }
    }
    assert!(expected.len() > 50, "{} annotated methods", expected.len());
    let mut ids = Vec::new();
    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths {
        let declared: BTreeSet<String> = path
            .split('{')
            .skip(1)
            .map(|p| p.split('}').next().unwrap().to_owned())
            .collect();
        for (method, op) in item.as_object().unwrap() {
            assert!(
                ["get", "post", "put", "patch", "delete"].contains(&method.as_str()),
                "{method}"
            );
            ids.push(op["operationId"].as_str().unwrap().to_owned());
            let params = op["parameters"].as_array().unwrap();
            let in_path: BTreeSet<String> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(in_path, declared, "{method} {path}");
            let mut names = BTreeSet::new();
            for p in params {
                assert!(
                    names.insert((p["in"].clone().to_string(), p["name"].to_string())),
                    "{method} {path}: {p} twice"
                );
                assert!(p["schema"].is_object(), "{method} {path}: {p}");
            }
            assert!(
                op["responses"]["200"]["content"]["application/json"]["schema"].is_object(),
                "{method} {path}"
            );
            assert_eq!(
                op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/google.rpc.Status"
            );
            assert!(op["summary"].is_string(), "{method} {path}");
        }
    }
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "operation ids are unique");
    assert_eq!(unique, expected, "one operation per annotated RPC");

    // Every reference resolves.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for r in &all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r}"));
        assert!(schemas.contains_key(name), "{r} does not resolve");
    }

    // The JSON mapping: names in lowerCamelCase, int64 as strings, enums by name; comments as
    // descriptions.
    let influencer = &schemas["chorus.registry.v1.Influencer"];
    assert!(
        influencer["properties"]["displayName"]["description"]
            .as_str()
            .unwrap()
            .contains("1..200 characters")
    );
    assert_eq!(influencer["properties"]["createTime"]["format"], "date-time");
    assert_eq!(
        schemas["chorus.type.v1.Money"]["properties"]["amountMinor"]["type"],
        "string"
    );
    assert!(
        schemas["chorus.type.v1.Platform"]["anyOf"][0]["enum"]
            .as_array()
            .unwrap()
            .contains(&Value::from("PLATFORM_INSTAGRAM"))
    );
    // A request may give the number instead (proto3 JSON mapping).
    assert_eq!(schemas["chorus.type.v1.Platform"]["anyOf"][1]["type"], "integer");
    let create = &paths["/v1/influencers"]["post"];
    assert_eq!(create["summary"], "Creates an influencer");
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/chorus.registry.v1.Influencer"
    );
    let list = &paths["/v1/influencers"]["get"];
    let query: Vec<&str> = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        query.contains(&"page_size") && query.contains(&"country_code"),
        "{query:?}"
    );
    let get = &paths["/v1/influencers/{influencer_id}"]["get"];
    assert_eq!(get["operationId"], "RegistryService_GetInfluencer");
    assert!(paths["/v1/influencers:export"]["get"]["responses"]["200"]["content"]["application/x-ndjson"].is_object());

    assert!(html.contains("/v1/influencers/{influencer_id}") && html.contains("RegistryService"));
    assert!(html.contains("href=\"/openapi.json\""));
}
