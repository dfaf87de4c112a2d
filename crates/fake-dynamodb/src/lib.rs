//! A loopback DynamoDB endpoint for the import tests and `bench/import`.
//!
//! It speaks the JSON protocol the SDKs use (`X-Amz-Target: DynamoDB_20120810.<Operation>`) for
//! the calls an import makes: `DescribeTable`, `BatchWriteItem` and `PutItem`. Every request
//! body is parsed and validated the way DynamoDB documents it (at most 25 writes, every key
//! attribute present with its declared type and not an empty string, no key twice in one batch,
//! items under 400 KB, numbers of at most 38 digits), so a client that sends something AWS would
//! refuse fails here too. Items are counted by the write units they cost (1 KB each, sized by
//! AWS's rules), and an optional write rate throttles like provisioned capacity: what the
//! bucket cannot take comes back as `UnprocessedItems`, and a request of which nothing fits is a
//! `ProvisionedThroughputExceededException`.
//!
//! Why not moto: at tens of thousands of items a second moto is the bottleneck, it never
//! throttles, and it does not count.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

/// The largest item DynamoDB stores.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// A key attribute's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// String.
    S,
    /// Number.
    N,
    /// Binary.
    B,
}

impl KeyType {
    fn name(self) -> &'static str {
        match self {
            KeyType::S => "S",
            KeyType::N => "N",
            KeyType::B => "B",
        }
    }
}

/// What the fake serves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The table's name.
    pub table: String,
    /// Partition key name and type.
    pub hash_key: (String, KeyType),
    /// Sort key, if any.
    pub range_key: Option<(String, KeyType)>,
    /// Write units a second accepted (a token bucket holding one second); `None` takes everything.
    pub write_rate: Option<f64>,
    /// Reported by DescribeTable as the table's provisioned write capacity (`None`: on-demand).
    pub provisioned_wcu: Option<u64>,
    /// Every n-th BatchWriteItem returns its last write as unprocessed, throttling or not.
    pub unprocessed_every: Option<u64>,
    /// Every n-th write request fails with a 500 before writing anything.
    pub fail_every: Option<u64>,
    /// Keep every item (for tests comparing contents, and BatchGetItem); off, only counts are kept.
    pub store: bool,
    /// Every n-th item acknowledged is not kept: a table that loses writes, for tests of
    /// reading back.
    pub lose_every: Option<u64>,
}

impl Config {
    /// A table with a string partition key, accepting everything, storing nothing.
    pub fn new(table: &str, hash_key: &str) -> Self {
        Config {
            table: table.to_string(),
            hash_key: (hash_key.to_string(), KeyType::S),
            range_key: None,
            write_rate: None,
            provisioned_wcu: None,
            unprocessed_every: None,
            fail_every: None,
            store: false,
            lose_every: None,
        }
    }
}

/// Counters, readable while the server runs.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Write requests received (BatchWriteItem and PutItem).
    pub requests: u64,
    /// Items written.
    pub items: u64,
    /// Write units those items cost.
    pub write_units: u64,
    /// Items handed back as unprocessed.
    pub unprocessed: u64,
    /// Requests refused whole with ProvisionedThroughputExceededException.
    pub throttled: u64,
    /// Requests refused as invalid (ValidationException and the like).
    pub invalid: u64,
    /// Requests failed on purpose with a 500.
    pub failed: u64,
}

impl Stats {
    /// The counters as JSON (the `/stats` answer).
    pub fn to_json(&self) -> Value {
        json!({
            "requests": self.requests,
            "items": self.items,
            "write_units": self.write_units,
            "unprocessed": self.unprocessed,
            "throttled": self.throttled,
            "invalid": self.invalid,
            "failed": self.failed,
        })
    }
}

struct State {
    config: Config,
    stats: Stats,
    tokens: f64,
    refilled: Instant,
    /// Key (canonical JSON of the key attributes) → (times written, the last item written).
    items: HashMap<String, (u64, Value)>,
}

/// A running fake.
#[derive(Clone)]
pub struct Fake {
    state: Arc<Mutex<State>>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Fake {
    /// The endpoint URL to give an SDK.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.state.lock().unwrap().stats.clone()
    }

    /// With `store`: every key written, how many times it was written, and its last item
    /// (DynamoDB's JSON), sorted by key.
    pub fn items(&self) -> Vec<(String, u64, Value)> {
        let state = self.state.lock().unwrap();
        let mut items: Vec<_> = state
            .items
            .iter()
            .map(|(k, (n, item))| (k.clone(), *n, item.clone()))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        items
    }
}

/// Starts the fake on a loopback port (0: any free one) on the current Tokio runtime.
pub async fn start(config: Config, port: u16) -> std::io::Result<Fake> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let tokens = config.write_rate.unwrap_or(0.0);
    let state = Arc::new(Mutex::new(State {
        config,
        stats: Stats::default(),
        tokens,
        refilled: Instant::now(),
        items: HashMap::new(),
    }));
    let fake = Fake {
        state: state.clone(),
        addr,
    };
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let state = state.clone();
                    async move { Ok::<_, hyper::Error>(handle(&state, request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(fake)
}

async fn handle(state: &Mutex<State>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let path = request.uri().path().to_string();
    let Ok(body) = request.into_body().collect().await else {
        return error(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "unreadable body",
        );
    };
    if path == "/stats" {
        let stats = state.lock().unwrap().stats.to_json();
        return answer(StatusCode::OK, &stats);
    }
    let body: Value = match serde_json::from_slice(&body.to_bytes()) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                &e.to_string(),
            );
        }
    };
    let mut state = state.lock().unwrap();
    match target.strip_prefix("DynamoDB_20120810.") {
        Some("DescribeTable") => state.describe_table(&body),
        Some("BatchWriteItem") => state.batch_write_item(&body),
        Some("PutItem") => state.put_item(&body),
        Some("BatchGetItem") => state.batch_get_item(&body),
        _ => error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!("the fake does not serve {target}"),
        ),
    }
}

fn answer(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    answer(
        status,
        &json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": message}),
    )
}

/// An invalid request: the type and message DynamoDB answers with.
type Invalid = (&'static str, String);

impl State {
    fn describe_table(&self, body: &Value) -> Response<Full<Bytes>> {
        let c = &self.config;
        if body["TableName"].as_str() != Some(&c.table) {
            return error(
                StatusCode::BAD_REQUEST,
                "ResourceNotFoundException",
                "Requested resource not found",
            );
        }
        let mut keys = vec![(&c.hash_key, "HASH")];
        if let Some(range) = &c.range_key {
            keys.push((range, "RANGE"));
        }
        let (billing, wcu) = match c.provisioned_wcu {
            Some(wcu) => ("PROVISIONED", wcu),
            None => ("PAY_PER_REQUEST", 0),
        };
        answer(
            StatusCode::OK,
            &json!({"Table": {
                "TableName": c.table,
                "TableArn": format!("arn:aws:dynamodb:us-east-1:123456789012:table/{}", c.table),
                "TableStatus": "ACTIVE",
                "KeySchema": keys.iter().map(|((n, _), k)| json!({"AttributeName": n, "KeyType": k})).collect::<Vec<_>>(),
                "AttributeDefinitions": keys.iter().map(|((n, t), _)| json!({"AttributeName": n, "AttributeType": t.name()})).collect::<Vec<_>>(),
                "BillingModeSummary": {"BillingMode": billing},
                "ProvisionedThroughput": {"ReadCapacityUnits": wcu, "WriteCapacityUnits": wcu, "NumberOfDecreasesToday": 0},
                "ItemCount": self.stats.items,
            }}),
        )
    }

    fn refill(&mut self) {
        if let Some(rate) = self.config.write_rate {
            let now = Instant::now();
            let elapsed = now.duration_since(self.refilled).as_secs_f64();
            self.tokens = (self.tokens + elapsed * rate).min(rate);
            self.refilled = now;
        }
    }

    /// Takes `units` from the bucket if it holds them.
    fn take(&mut self, units: u64) -> bool {
        if self.config.write_rate.is_none() {
            return true;
        }
        if self.tokens >= units as f64 {
            self.tokens -= units as f64;
            true
        } else {
            false
        }
    }

    fn failing_now(&mut self) -> bool {
        self.stats.requests += 1;
        matches!(self.config.fail_every, Some(n) if self.stats.requests.is_multiple_of(n))
    }

    fn batch_write_item(&mut self, body: &Value) -> Response<Full<Bytes>> {
        if self.failing_now() {
            self.stats.failed += 1;
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "Internal server error (the fake's --fail-every)",
            );
        }
        let writes = match self.validate_batch(body) {
            Ok(writes) => writes,
            Err((kind, message)) => {
                self.stats.invalid += 1;
                return error(StatusCode::BAD_REQUEST, kind, &message);
            }
        };
        self.refill();
        let mut unprocessed = Vec::new();
        let mut written = 0u64;
        let forced = matches!(self.config.unprocessed_every, Some(n) if self.stats.requests.is_multiple_of(n));
        let count = writes.len();
        for (i, (request, key, units)) in writes.into_iter().enumerate() {
            if (forced && i + 1 == count) || !self.take(units) {
                unprocessed.push(request);
                continue;
            }
            written += units;
            self.write(key, &request, units);
        }
        if written == 0 && !unprocessed.is_empty() && !forced {
            self.stats.throttled += 1;
            return error(
                StatusCode::BAD_REQUEST,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
            );
        }
        self.stats.unprocessed += unprocessed.len() as u64;
        let mut answer_body = json!({"UnprocessedItems": {}});
        if !unprocessed.is_empty() {
            answer_body["UnprocessedItems"][&self.config.table] = Value::Array(unprocessed);
        }
        if body["ReturnConsumedCapacity"]
            .as_str()
            .is_some_and(|v| v != "NONE")
        {
            answer_body["ConsumedCapacity"] =
                json!([{"TableName": self.config.table, "CapacityUnits": written}]);
        }
        answer(StatusCode::OK, &answer_body)
    }

    fn put_item(&mut self, body: &Value) -> Response<Full<Bytes>> {
        if self.failing_now() {
            self.stats.failed += 1;
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "Internal server error",
            );
        }
        if body["TableName"].as_str() != Some(&self.config.table) {
            self.stats.invalid += 1;
            return error(
                StatusCode::BAD_REQUEST,
                "ResourceNotFoundException",
                "Requested resource not found",
            );
        }
        let (key, units) = match self.validate_item(&body["Item"]) {
            Ok(v) => v,
            Err((kind, message)) => {
                self.stats.invalid += 1;
                return error(StatusCode::BAD_REQUEST, kind, &message);
            }
        };
        self.refill();
        if !self.take(units) {
            self.stats.throttled += 1;
            return error(
                StatusCode::BAD_REQUEST,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
            );
        }
        let request = json!({"PutRequest": {"Item": body["Item"].clone()}});
        self.write(key, &request, units);
        answer(StatusCode::OK, &json!({}))
    }

    fn write(&mut self, key: String, request: &Value, units: u64) {
        self.stats.items += 1;
        self.stats.write_units += units;
        let lost = matches!(self.config.lose_every, Some(n) if self.stats.items.is_multiple_of(n));
        if self.config.store && !lost {
            let entry = self.items.entry(key).or_insert((0, Value::Null));
            entry.0 += 1;
            entry.1 = request["PutRequest"]["Item"].clone();
        }
    }

    /// BatchGetItem from what was stored: found items in `Responses`, nothing unprocessed.
    fn batch_get_item(&self, body: &Value) -> Response<Full<Bytes>> {
        let Some(keys) = body["RequestItems"][&self.config.table]["Keys"].as_array() else {
            return error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "RequestItems must name the table's Keys",
            );
        };
        if keys.is_empty() || keys.len() > 100 {
            return error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "Too many items requested for the BatchGetItem call",
            );
        }
        let mut found = Vec::new();
        for key in keys {
            let parts: Vec<String> = std::iter::once(&self.config.hash_key)
                .chain(&self.config.range_key)
                .map(|(name, kind)| key[name][kind.name()].to_string())
                .collect();
            if let Some((_, item)) = self.items.get(&parts.join("|")) {
                found.push(item.clone());
            }
        }
        answer(
            StatusCode::OK,
            &json!({"Responses": {&self.config.table: found}, "UnprocessedKeys": {}}),
        )
    }

    /// Each write of the batch: the request as sent, its key, its write units.
    fn validate_batch(&self, body: &Value) -> Result<Vec<(Value, String, u64)>, Invalid> {
        let Some(tables) = body["RequestItems"].as_object() else {
            return Err(("ValidationException", "RequestItems is required".into()));
        };
        let mut writes = Vec::new();
        for (table, requests) in tables {
            if table != &self.config.table {
                return Err((
                    "ResourceNotFoundException",
                    "Requested resource not found".into(),
                ));
            }
            for request in requests.as_array().into_iter().flatten() {
                let item = &request["PutRequest"]["Item"];
                if item.is_null() {
                    return Err((
                        "ValidationException",
                        "the fake takes PutRequest writes only".into(),
                    ));
                }
                let (key, units) = self.validate_item(item)?;
                writes.push((request.clone(), key, units));
            }
        }
        if writes.is_empty() || writes.len() > 25 {
            return Err((
                "ValidationException",
                format!(
                    "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1] ({} writes)",
                    writes.len()
                ),
            ));
        }
        let mut keys: Vec<&String> = writes.iter().map(|(_, k, _)| k).collect();
        keys.sort();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return Err((
                "ValidationException",
                "Provided list of item keys contains duplicates".into(),
            ));
        }
        Ok(writes)
    }

    /// The item's key (canonical) and write units, or why DynamoDB would refuse it.
    fn validate_item(&self, item: &Value) -> Result<(String, u64), Invalid> {
        let Some(attributes) = item.as_object() else {
            return Err(("ValidationException", "Item must be a map".into()));
        };
        let mut size = 0usize;
        for (name, value) in attributes {
            size += name.len() + value_size(value).map_err(|m| ("ValidationException", m))?;
        }
        let mut key = Vec::new();
        for (name, kind) in std::iter::once(&self.config.hash_key).chain(&self.config.range_key) {
            let Some(value) = attributes.get(name) else {
                return Err((
                    "ValidationException",
                    format!(
                        "One or more parameter values were invalid: Missing the key {name} in the item"
                    ),
                ));
            };
            let Some(inner) = value.get(kind.name()) else {
                let actual = value
                    .as_object()
                    .and_then(|o| o.keys().next())
                    .cloned()
                    .unwrap_or_default();
                return Err((
                    "ValidationException",
                    format!(
                        "One or more parameter values were invalid: Type mismatch for key {name} expected: {} actual: {actual}",
                        kind.name()
                    ),
                ));
            };
            if inner.as_str() == Some("") {
                return Err((
                    "ValidationException",
                    format!(
                        "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: {name}"
                    ),
                ));
            }
            key.push(inner.to_string());
        }
        if size > MAX_ITEM_BYTES {
            return Err((
                "ValidationException",
                "Item size has exceeded the maximum allowed size".into(),
            ));
        }
        Ok((key.join("|"), size.div_ceil(1024).max(1) as u64))
    }
}

/// An attribute value's size by AWS's rules ("Item sizes and formats" in the DynamoDB developer
/// guide): strings and binaries their bytes, numbers about one byte per two significant digits
/// plus one, booleans and nulls one byte, lists and maps three bytes plus one per element plus
/// their contents. Binary arrives base64-encoded and counts decoded.
pub fn value_size(value: &Value) -> Result<usize, String> {
    let Some(object) = value.as_object().filter(|o| o.len() == 1) else {
        return Err(format!(
            "Supplied AttributeValue has more or less than one datatype: {value}"
        ));
    };
    let (kind, inner) = object.iter().next().unwrap();
    match (kind.as_str(), inner) {
        ("S", Value::String(s)) => Ok(s.len()),
        ("N", Value::String(n)) => number_size(n),
        ("B", Value::String(b)) => Ok(b.trim_end_matches('=').len() * 3 / 4),
        ("BOOL", Value::Bool(_)) | ("NULL", Value::Bool(true)) => Ok(1),
        ("L", Value::Array(list)) => list
            .iter()
            .try_fold(3, |sum, v| Ok(sum + 1 + value_size(v)?)),
        ("M", Value::Object(map)) => map
            .iter()
            .try_fold(3, |sum, (k, v)| Ok(sum + 1 + k.len() + value_size(v)?)),
        ("SS" | "NS" | "BS", Value::Array(set)) if !set.is_empty() => {
            Ok(set.iter().map(|v| v.as_str().map_or(0, str::len)).sum())
        }
        _ => Err(format!("invalid AttributeValue: {value}")),
    }
}

fn number_size(text: &str) -> Result<usize, String> {
    let digits = text.trim_start_matches(['-', '+']);
    let (mantissa, exponent) = match digits.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (digits, None),
    };
    let valid_mantissa = !mantissa.is_empty()
        && mantissa.chars().all(|c| c.is_ascii_digit() || c == '.')
        && mantissa.matches('.').count() <= 1
        && mantissa.chars().any(|c| c.is_ascii_digit());
    let valid_exponent = exponent.is_none_or(|e| {
        let e = e.trim_start_matches(['-', '+']);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    });
    if !valid_mantissa || !valid_exponent {
        return Err(format!(
            "A value provided cannot be converted into a number: {text}"
        ));
    }
    let significant = mantissa.replace('.', "");
    let significant = significant.trim_start_matches('0').trim_end_matches('0');
    if significant.len() > 38 {
        return Err(format!(
            "Attempting to store more than 38 significant digits in a Number: {text}"
        ));
    }
    Ok(significant.len().div_ceil(2) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_documented_rules() {
        for (value, size) in [
            (json!({"S": "héllo"}), 6),
            (json!({"N": "123"}), 3),
            (json!({"N": "-0.0012300"}), 3),
            (json!({"B": "AAEC"}), 3),
            (json!({"BOOL": false}), 1),
            (json!({"NULL": true}), 1),
            (json!({"L": [{"S": "ab"}, {"N": "1"}]}), 3 + 1 + 2 + 1 + 2),
            (json!({"M": {"a": {"S": "b"}}}), 3 + 1 + 1 + 1),
        ] {
            assert_eq!(value_size(&value), Ok(size), "{value}");
        }
        assert!(value_size(&json!({"N": "1.2.3"})).is_err());
        assert!(value_size(&json!({"N": "1".repeat(39)})).is_err());
        assert!(value_size(&json!({"S": "a", "N": "1"})).is_err());
    }
}
