//! The JSON an Application Load Balancer sends a Lambda target and the JSON it expects back, with
//! multi-value headers on (deployer's target groups set `lambda.multi_value_headers.enabled`).

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// The largest request body the load balancer passes to a Lambda function (1 MB).
pub const MAX_REQUEST_BODY: usize = 1024 * 1024;
/// The largest response JSON it accepts from one (1 MB).
pub const MAX_RESPONSE: usize = 1024 * 1024;

/// An HTTP request as the load balancer received it.
pub struct Request<'a> {
    /// Method.
    pub method: &'a str,
    /// Path, without the query string.
    pub path: &'a str,
    /// The raw query string (without `?`), if any.
    pub query: Option<&'a str>,
    /// Headers in order, names as received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: &'a [u8],
}

/// Whether the load balancer passes a body as text: it does for `text/*`, `application/json`,
/// `application/javascript` and `application/xml` without a `Content-Encoding`; anything else is
/// base64-encoded.
pub fn body_is_text(content_type: Option<&str>, content_encoding: Option<&str>) -> bool {
    if content_encoding.is_some_and(|e| !e.trim().is_empty()) {
        return false;
    }
    let Some(content_type) = content_type else {
        return false;
    };
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media.starts_with("text/")
        || matches!(
            media.as_str(),
            "application/json" | "application/javascript" | "application/xml"
        )
}

/// The event for `request`, sent to the function behind `target_group_arn`.
pub fn event(request: &Request, target_group_arn: &str) -> Value {
    let mut headers = Map::new();
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    for (name, value) in &request.headers {
        let values = headers
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| json!([]));
        values.as_array_mut().expect("array").push(json!(value));
    }
    // The query string's keys and values are passed as sent: the load balancer does not decode them.
    let mut query = Map::new();
    for pair in request
        .query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let values = query.entry(key.to_string()).or_insert_with(|| json!([]));
        values.as_array_mut().expect("array").push(json!(value));
    }
    let text = body_is_text(header("content-type"), header("content-encoding"));
    let body = if text {
        String::from_utf8_lossy(request.body).into_owned()
    } else {
        base64::engine::general_purpose::STANDARD.encode(request.body)
    };
    json!({
        "requestContext": { "elb": { "targetGroupArn": target_group_arn } },
        "httpMethod": request.method,
        "path": request.path,
        "multiValueQueryStringParameters": query,
        "multiValueHeaders": headers,
        "body": body,
        "isBase64Encoded": !text,
    })
}

/// An HTTP response made from the function's answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// The HTTP response for the function's answer, or why the load balancer would answer 502
/// instead (malformed, missing `statusCode`, over 1 MB).
pub fn response(answer: &[u8]) -> Result<Response, String> {
    if answer.len() > MAX_RESPONSE {
        return Err(format!(
            "the function's response is {} bytes, over the load balancer's 1 MB",
            answer.len()
        ));
    }
    let value: Value = serde_json::from_slice(answer)
        .map_err(|e| format!("the function's response is not JSON: {e}"))?;
    let status = value["statusCode"]
        .as_u64()
        .filter(|s| (100..=599).contains(s))
        .ok_or("the function's response has no valid statusCode")? as u16;
    let mut headers = Vec::new();
    // With multi-value headers on, the load balancer reads `multiValueHeaders`; a function that
    // answers with `headers` only is read from those.
    if let Some(multi) = value["multiValueHeaders"].as_object() {
        for (name, values) in multi {
            for v in values.as_array().into_iter().flatten() {
                headers.push((name.clone(), scalar(v)));
            }
        }
    } else if let Some(single) = value["headers"].as_object() {
        for (name, v) in single {
            headers.push((name.clone(), scalar(v)));
        }
    }
    let body = match &value["body"] {
        Value::Null => Vec::new(),
        Value::String(text) if value["isBase64Encoded"] == true => {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| format!("the function's body is marked base64 but is not: {e}"))?
        }
        Value::String(text) => text.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_text_only_for_the_documented_types() {
        for (content_type, encoding, text) in [
            (Some("text/plain"), None, true),
            (Some("text/html; charset=utf-8"), None, true),
            (Some("Application/JSON"), None, true),
            (Some("application/javascript"), None, true),
            (Some("application/xml"), None, true),
            (Some("application/json"), Some("gzip"), false),
            (Some("application/octet-stream"), None, false),
            (Some("application/x-www-form-urlencoded"), None, false),
            (Some("image/png"), None, false),
            (None, None, false),
        ] {
            assert_eq!(
                body_is_text(content_type, encoding),
                text,
                "{content_type:?} {encoding:?}"
            );
        }
    }

    #[test]
    fn the_event_has_lowercase_multi_value_headers_and_undecoded_query_values() {
        let request = Request {
            method: "POST",
            path: "/notes",
            query: Some("tag=a%20b&tag=c&flag"),
            headers: vec![
                ("Content-Type".into(), "application/octet-stream".into()),
                ("Accept".into(), "a".into()),
                ("accept".into(), "b".into()),
            ],
            body: &[0, 159, 146, 150],
        };
        let event = event(&request, "arn:tg");
        assert_eq!(event["multiValueHeaders"]["accept"], json!(["a", "b"]));
        assert_eq!(
            event["multiValueQueryStringParameters"]["tag"],
            json!(["a%20b", "c"])
        );
        assert_eq!(
            event["multiValueQueryStringParameters"]["flag"],
            json!([""])
        );
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], "AJ+Slg==");
        assert_eq!(event["requestContext"]["elb"]["targetGroupArn"], "arn:tg");
    }

    #[test]
    fn answers_become_responses_or_the_reason_for_a_502() {
        let ok = response(
            br#"{"statusCode":201,"multiValueHeaders":{"set-cookie":["a=1","b=2"]},"body":"aGk=","isBase64Encoded":true}"#,
        )
        .unwrap();
        assert_eq!(ok.status, 201);
        assert_eq!(
            ok.headers,
            [
                ("set-cookie".to_string(), "a=1".to_string()),
                ("set-cookie".into(), "b=2".into())
            ]
        );
        assert_eq!(ok.body, b"hi");
        let single = response(br#"{"statusCode":200,"headers":{"x":"y"},"body":"{}"}"#).unwrap();
        assert_eq!(
            (single.headers[0].1.as_str(), single.body.as_slice()),
            ("y", &b"{}"[..])
        );
        for bad in [
            &b"not json"[..],
            br#"{"body":"x"}"#,
            br#"{"statusCode":"200"}"#,
        ] {
            assert!(response(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let big = format!(
            r#"{{"statusCode":200,"body":"{}"}}"#,
            "x".repeat(MAX_RESPONSE)
        );
        assert!(response(big.as_bytes()).unwrap_err().contains("1 MB"));
    }
}
