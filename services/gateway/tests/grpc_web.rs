//! gRPC-Web as a browser sends it, built by hand: frames of a one-byte flag and a four-byte
//! length, the trailers in a last frame flagged 0x80; `-text` is the same, base64.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chorus_proto::registry::{GetInfluencerRequest, GetInfluencerResponse};
use common::{App, spawn};
use prost::Message;

fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The data frames' payloads and the trailers, from a gRPC-Web body.
fn frames(mut body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let (mut data, mut trailers) = (Vec::new(), String::new());
    while !body.is_empty() {
        let flag = body[0];
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        let payload = &body[5..5 + len];
        if flag & 0x80 != 0 {
            trailers.push_str(std::str::from_utf8(payload).unwrap());
        } else {
            data.push(payload.to_vec());
        }
        body = &body[5 + len..];
    }
    (data, trailers)
}

async fn call(app: &App, content_type: &str, name: &str, token: Option<&str>) -> (u16, Vec<Vec<u8>>, String) {
    let request = frame(0, &GetInfluencerRequest { name: name.to_owned() }.encode_to_vec());
    let text = content_type.contains("-text");
    let body = match text {
        true => STANDARD.encode(&request).into_bytes(),
        false => request,
    };
    let mut r = app
        .http
        .post(app.url("/chorus.registry.v1.RegistryService/GetInfluencer"))
        .header("content-type", content_type)
        .header("x-grpc-web", "1")
        .body(body);
    if text {
        // As the grpc-web JavaScript client asks for a base64 answer in text mode.
        r = r.header("accept", "application/grpc-web-text");
    }
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let response = r.send().await.expect("an answer");
    let status = response.status().as_u16();
    // A trailers-only answer (an error before any message) carries its status in the
    // headers, which gRPC-Web clients read as trailers.
    let header_status = response
        .headers()
        .get("grpc-status")
        .map(|v| format!("grpc-status:{}\r\n", v.to_str().unwrap()));
    let answered = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(answered.contains("-text"), text, "{answered}");
    let raw = response.bytes().await.expect("a body").to_vec();
    let raw = match text {
        // Each chunk is base64 of its own (padded), as gRPC-Web allows: decode them in turn.
        true => {
            let text = String::from_utf8(raw).expect("base64 text");
            let mut out = Vec::new();
            let mut rest = text.as_str();
            while !rest.is_empty() {
                let end = rest.find('=').map_or(rest.len(), |i| {
                    let pad = rest[i..].chars().take_while(|c| *c == '=').count();
                    i + pad
                });
                out.extend(STANDARD.decode(&rest[..end]).unwrap_or_else(|e| panic!("{e}: {text}")));
                rest = &rest[end..];
            }
            out
        }
        false => raw,
    };
    let (data, mut trailers) = frames(&raw);
    trailers.extend(header_status);
    (status, data, trailers)
}

chorus_testkit::on_both_backends! { spawn;
    get_influencer_over_grpc_web => |app: App| async move {
        let created = app.create_influencer("Web Pup", "web.pup", "US").await;
        let name = created["name"].as_str().unwrap().to_owned();
        for content_type in ["application/grpc-web", "application/grpc-web+proto", "application/grpc-web-text"] {
            let (status, data, trailers) = call(&app, content_type, &name, Some(&app.token)).await;
            assert_eq!(status, 200, "{content_type}");
            assert!(trailers.contains("grpc-status:0"), "{content_type}: {trailers}");
            assert_eq!(data.len(), 1, "{content_type}");
            let answer = GetInfluencerResponse::decode(data[0].as_slice()).expect("a GetInfluencerResponse");
            let influencer = answer.influencer.expect("an influencer");
            assert_eq!(influencer.name, name);
            assert_eq!(influencer.display_name, "Web Pup");
        }

        // Errors are trailers, as gRPC-Web clients expect: NOT_FOUND (5), UNAUTHENTICATED (16).
        let (_, data, trailers) = call(&app, "application/grpc-web+proto", "influencers/0190c3d2-7a3e-7b4c-9d5e-123456789abc", Some(&app.token)).await;
        assert!(data.is_empty());
        assert!(trailers.contains("grpc-status:5"), "{trailers}");
        let (_, _, trailers) = call(&app, "application/grpc-web+proto", &name, None).await;
        assert!(trailers.contains("grpc-status:16"), "{trailers}");
    };
}

/// A method no proto declares is UNIMPLEMENTED, without calling anyone.
#[tokio::test]
async fn an_unknown_method_is_unimplemented() {
    let gateway = common::start_gateway(vec![("CHORUS_GATEWAY_ADDR".into(), "127.0.0.1:0".into())]).await;
    let response = reqwest::Client::new()
        .post(format!(
            "http://{}/chorus.registry.v1.RegistryService/Nope",
            gateway.addr
        ))
        .header("content-type", "application/grpc-web+proto")
        .body(frame(0, &[]))
        .send()
        .await
        .expect("an answer");
    let grpc_status = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.bytes().await.unwrap();
    let (_, trailers) = frames(&body);
    assert!(
        grpc_status.as_deref() == Some("12") || trailers.contains("grpc-status:12"),
        "{grpc_status:?} {trailers}"
    );
    gateway.shutdown().await.unwrap();
}
