//! The fixture's tools answer as the conformance suite's scenarios expect (the suite itself runs
//! against `claribi-host serve` in host/tests/engine_conformance.rs). Kept out of `src/lib.rs`, which
//! that test compiles in.

use mcp_fixture::{call, json_schema_2020_12, tools, Fixture, ERROR_TEXT, JSON_SCHEMA_2020_12, REGION_HEADER, SIMPLE_TEXT, TOOL_NAMES};
use serde_json::{json, Map, Value};

#[test]
fn every_listed_tool_answers_and_nothing_else_does() {
    let listed: Vec<String> = tools().iter().map(|t| t.name.to_string()).collect();
    assert_eq!(listed, TOOL_NAMES);
    for name in TOOL_NAMES {
        assert!(call(name, &Map::new()).is_some(), "{name}");
    }
    assert!(call("test_sampling", &Map::new()).is_none());
}

#[test]
fn results_have_the_shapes_the_suite_checks() {
    let v = |name: &str| serde_json::to_value(call(name, &Map::new()).unwrap()).unwrap();
    assert_eq!(v("test_simple_text")["content"][0]["text"], SIMPLE_TEXT);
    assert_eq!(v("test_image_content")["content"][0]["mimeType"], "image/png");
    assert_eq!(v("test_audio_content")["content"][0]["mimeType"], "audio/wav");
    let r = v("test_embedded_resource");
    assert_eq!(r["content"][0]["type"], "resource");
    assert_eq!(r["content"][0]["resource"]["mimeType"], "text/plain");
    assert_eq!(r["content"][0]["resource"]["uri"], "test://embedded-resource");
    let types: Vec<Value> =
        v("test_multiple_content_types")["content"].as_array().unwrap().iter().map(|c| c["type"].clone()).collect();
    assert_eq!(types, [json!("text"), json!("image"), json!("resource")]);
    let e = v("test_error_handling");
    assert_eq!(e["isError"], true);
    assert_eq!(e["content"][0]["text"], ERROR_TEXT);
}

#[test]
fn the_2020_12_tool_lists_every_keyword_the_suite_looks_for() {
    let t = tools().into_iter().find(|t| t.name == "json_schema_2020_12_tool").unwrap();
    let schema = serde_json::to_value(&t.input_schema).unwrap();
    assert_eq!(schema, json_schema_2020_12());
    assert_eq!(schema["$schema"], JSON_SCHEMA_2020_12);
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["properties"]["address"]["$ref"], "#/$defs/address");
    assert_eq!(schema["$defs"]["address"]["$anchor"], "addressDef");
    assert!(schema["allOf"][0]["anyOf"].is_array(), "composition: allOf holding anyOf");
    assert!(schema["if"].is_object() && schema["then"].is_object() && schema["else"].is_object(), "conditionals");
}

#[test]
fn the_header_tool_marks_a_string_argument_for_an_mcp_param_header() {
    let t = tools().into_iter().find(|t| t.name == "test_header_tool").unwrap();
    let region = &t.input_schema["properties"]["region"];
    assert_eq!(region["type"], "string");
    assert_eq!(region["x-mcp-header"], REGION_HEADER);
    let args: Map<String, Value> = serde_json::from_value(json!({"region": "us-west1"})).unwrap();
    assert_eq!(serde_json::to_value(call("test_header_tool", &args).unwrap()).unwrap()["content"][0]["text"], "Region: us-west1");
}

#[tokio::test]
async fn it_serves_on_a_free_loopback_port_and_stops() {
    let f = Fixture::start().await.unwrap();
    assert!(f.addr().ip().is_loopback() && f.addr().port() != 0);
    assert_eq!(f.url(), format!("{}/mcp", f.origin()));
    let addr = f.addr();
    f.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "nothing listens after shutdown");
}
