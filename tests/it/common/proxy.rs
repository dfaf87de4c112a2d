//! An HTTP proxy between deployer and moto that makes moto's instant operations look slow, so
//! tests can interrupt them: after `ExecuteChangeSet` it reports the stack `*_IN_PROGRESS` until
//! the operation is cancelled or deleted, and it can keep change sets `CREATE_PENDING`.
//! It answers `CancelUpdateStack` itself (moto does not implement it) and records every request.
//! With `account`, it is also what keeps the tests apart on one moto server: every request it
//! forwards names that account (moto's `x-moto-account-id` header).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// How the proxy bends moto's answers.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Report this stack in progress once a change set executes.
    pub hold_stack: Option<String>,
    /// After CancelUpdateStack, report the rollback as done (else: keep it in progress).
    pub cancel_completes: bool,
    /// Keep every change set CREATE_PENDING.
    pub hold_change_sets: bool,
    /// Faults to inject.
    pub faults: Vec<Fault>,
    /// Answer STS GetCallerIdentity and IAM SimulatePrincipalPolicy here (moto implements no
    /// simulation), as AWS would for this caller and these denied actions.
    pub iam: Option<IamAnswers>,
    /// The moto account every forwarded request acts in.
    pub account: Option<String>,
    /// Answer CloudFormation's drift detection here (moto has none), as its API Reference
    /// documents it.
    pub drift: Option<DriftAnswers>,
    /// Answer the Price List Query API's GetProducts here (moto has none) with these products:
    /// (service code, region code, usage type, on-demand USD per unit); each product's first
    /// tier is free, as DynamoDB's storage and Lambda's requests are, and answers come two
    /// products a page, as the API pages them (`NextToken`).
    pub pricing: Option<Vec<(String, String, String, String)>>,
}

/// GetProducts, as the Price List Query API answers it: the products of the request's
/// `ServiceCode` whose attributes match each `TERM_MATCH` filter, each a JSON string, paged.
fn pricing_answer(products: &[(String, String, String, String)], request: &Message) -> Vec<u8> {
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
    let service = body["ServiceCode"].as_str().unwrap_or_default();
    let region = body["Filters"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["Field"] == "regionCode")
        .and_then(|f| f["Value"].as_str())
        .unwrap_or_default();
    let matching: Vec<String> = products
        .iter()
        .filter(|(s, r, _, _)| s == service && r == region)
        .map(|(s, r, usage, usd)| {
            serde_json::json!({
                "product": { "productFamily": "x", "attributes": { "usagetype": usage, "regionCode": r, "servicecode": s }, "sku": "SKU" },
                "serviceCode": s,
                "terms": { "OnDemand": { "SKU.TERM": { "priceDimensions": {
                    "SKU.TERM.FREE": { "beginRange": "0", "endRange": "1", "unit": "x", "pricePerUnit": { "USD": "0.0000000000" } },
                    "SKU.TERM.PAID": { "beginRange": "1", "endRange": "Inf", "unit": "x", "pricePerUnit": { "USD": usd } },
                }}}},
                "publicationDate": "2030-01-01T00:00:00Z",
            })
            .to_string()
        })
        .collect();
    let start: usize = body["NextToken"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let end = (start + 2).min(matching.len());
    let mut answer =
        serde_json::json!({ "FormatVersion": "aws_v1", "PriceList": matching[start..end] });
    if end < matching.len() {
        answer["NextToken"] = serde_json::json!(end.to_string());
    }
    with_length(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n",
        answer.to_string().as_bytes(),
    )
}

/// What drift detection finds: DetectStackDrift starts it; DescribeStackDriftDetectionStatus
/// answers `DETECTION_IN_PROGRESS` for `polls_in_progress` calls, then `DETECTION_COMPLETE` (or
/// `DETECTION_FAILED` with `failed` as the reason); DescribeStackResourceDrifts lists
/// `resources`.
#[derive(Debug, Clone, Default)]
pub struct DriftAnswers {
    /// Status calls answered in progress.
    pub polls_in_progress: usize,
    /// Each resource: logical id, type, `MODIFIED`/`DELETED`/`IN_SYNC`/`NOT_CHECKED`, and its
    /// differences.
    pub resources: Vec<DriftedResource>,
    /// The reason of a failed detection.
    pub failed: Option<String>,
}

/// One resource of a drift answer: logical id, type, status, and its differences (path,
/// expected, actual).
pub type DriftedResource = (String, String, String, Vec<(String, String, String)>);

/// The answer of the drift detection stand-in, if `action` is one of its.
fn drift_answer(drift: &DriftAnswers, action: &str, state: &Mutex<State>) -> Option<Vec<u8>> {
    const NS: &str = "http://cloudformation.amazonaws.com/doc/2010-05-15/";
    const AT: &str = "2030-01-01T00:00:00.000Z";
    let escape = |v: &str| {
        v.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('"', "&quot;")
    };
    match action {
        "DetectStackDrift" => Some(query_answer(
            action,
            NS,
            "<StackDriftDetectionId>drift-1</StackDriftDetectionId>",
        )),
        "DescribeStackDriftDetectionStatus" => {
            let polls = {
                let mut s = state.lock().unwrap();
                s.drift_polls += 1;
                s.drift_polls
            };
            let drifted = drift
                .resources
                .iter()
                .filter(|r| r.2 == "MODIFIED" || r.2 == "DELETED")
                .count();
            let (status, reason) = match (polls > drift.polls_in_progress, &drift.failed) {
                (false, _) => ("DETECTION_IN_PROGRESS", String::new()),
                (true, None) => ("DETECTION_COMPLETE", String::new()),
                (true, Some(why)) => (
                    "DETECTION_FAILED",
                    format!(
                        "<DetectionStatusReason>{}</DetectionStatusReason>",
                        escape(why)
                    ),
                ),
            };
            let stack_status = match (status, drifted) {
                ("DETECTION_IN_PROGRESS", _) => String::new(),
                (_, 0) => "<StackDriftStatus>IN_SYNC</StackDriftStatus>".into(),
                _ => "<StackDriftStatus>DRIFTED</StackDriftStatus>".into(),
            };
            Some(query_answer(
                action,
                NS,
                &format!(
                    "<StackId>stack</StackId><StackDriftDetectionId>drift-1</StackDriftDetectionId>{stack_status}<DetectionStatus>{status}</DetectionStatus>{reason}<DriftedStackResourceCount>{drifted}</DriftedStackResourceCount><Timestamp>{AT}</Timestamp>"
                ),
            ))
        }
        "DescribeStackResourceDrifts" => {
            let members: String = drift
                .resources
                .iter()
                .map(|(id, kind, status, differences)| {
                    let differences: String = differences
                        .iter()
                        .map(|(path, expected, actual)| {
                            format!(
                                "<member><PropertyPath>{}</PropertyPath><ExpectedValue>{}</ExpectedValue><ActualValue>{}</ActualValue><DifferenceType>NOT_EQUAL</DifferenceType></member>",
                                escape(path),
                                escape(expected),
                                escape(actual)
                            )
                        })
                        .collect();
                    format!(
                        "<member><StackId>stack</StackId><LogicalResourceId>{id}</LogicalResourceId><PhysicalResourceId>{id}</PhysicalResourceId><ResourceType>{kind}</ResourceType><PropertyDifferences>{differences}</PropertyDifferences><StackResourceDriftStatus>{status}</StackResourceDriftStatus><Timestamp>{AT}</Timestamp></member>"
                    )
                })
                .collect();
            Some(query_answer(
                action,
                NS,
                &format!("<StackResourceDrifts>{members}</StackResourceDrifts>"),
            ))
        }
        _ => None,
    }
}

/// One request as the proxy received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `PUT`, `POST`...
    pub method: String,
    /// The request target (path and query).
    pub url: String,
    /// The body (chunked bodies decoded).
    pub body: Vec<u8>,
    /// The `X-Amz-Target` header of JSON-protocol calls.
    pub target: Option<String>,
}

/// Who the caller is, and what IAM's policy simulation denies it.
#[derive(Debug, Clone, Default)]
pub struct IamAnswers {
    /// The ARN GetCallerIdentity returns.
    pub caller_arn: String,
    /// Actions SimulatePrincipalPolicy answers `implicitDeny` for; every other is `allowed`.
    pub denied: Vec<String>,
    /// Instead: the caller's identity policy, which SimulatePrincipalPolicy evaluates for each
    /// action against the request's resource and context keys, as IAM's evaluation logic does.
    pub policy: Option<serde_json::Value>,
    /// Answer SimulatePrincipalPolicy in pages of this many results (`IsTruncated`, `Marker`),
    /// as IAM may.
    pub page_size: Option<usize>,
}

/// `text` matches an IAM pattern (`*` any run, `?` one character).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A policy element that is one string or a list of them.
fn strings(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// IAM's decision for one request under an identity policy (explicit deny wins, then any
/// allow, else implicit deny), and the condition keys its statements use that the request
/// lacks. Conditions: `StringEquals`, `StringLike` and their `ForAnyValue:` forms; a missing
/// key fails the condition.
pub fn evaluate(
    policy: &serde_json::Value,
    action: &str,
    resource: &str,
    context: &BTreeMap<String, Vec<String>>,
) -> (&'static str, Vec<String>) {
    let mut missing = Vec::new();
    let mut allowed = false;
    for statement in policy["Statement"].as_array().into_iter().flatten() {
        let acts = strings(&statement["Action"]);
        if !acts
            .iter()
            .any(|a| glob(&a.to_lowercase(), &action.to_lowercase()))
        {
            continue;
        }
        if !strings(&statement["Resource"])
            .iter()
            .any(|r| glob(r, resource))
        {
            continue;
        }
        let mut holds = true;
        for (operator, keys) in statement["Condition"].as_object().into_iter().flatten() {
            for (key, wanted) in keys.as_object().into_iter().flatten() {
                let Some(given) = context.get(key) else {
                    missing.push(key.clone());
                    holds = false;
                    continue;
                };
                let wanted = strings(wanted);
                let like = operator.ends_with("StringLike");
                let one = |g: &String| {
                    wanted
                        .iter()
                        .any(|w| if like { glob(w, g) } else { w == g })
                };
                holds &= given.iter().any(one);
            }
        }
        if !holds {
            continue;
        }
        match statement["Effect"].as_str() {
            Some("Deny") => return ("explicitDeny", missing),
            Some("Allow") => allowed = true,
            _ => {}
        }
    }
    missing.sort();
    missing.dedup();
    (if allowed { "allowed" } else { "implicitDeny" }, missing)
}

/// The XML AWS answers `action` with (query protocol).
fn query_answer(action: &str, namespace: &str, result: &str) -> Vec<u8> {
    let body = format!(
        "<{action}Response xmlns=\"{namespace}\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>proxy</RequestId></ResponseMetadata></{action}Response>"
    );
    with_length(
        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n",
        body.as_bytes(),
    )
}

/// The answer of the IAM stand-in, if `request` is for it.
fn iam_answer(
    iam: &IamAnswers,
    action: &str,
    request: &Message,
    state: &Mutex<State>,
) -> Option<Vec<u8>> {
    let form: Vec<(String, String)> = form_urlencoded::parse(&request.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    match action {
        "GetCallerIdentity" => Some(query_answer(
            action,
            "https://sts.amazonaws.com/doc/2011-06-15/",
            &format!(
                "<Arn>{}</Arn><UserId>AROATESTINGONLY:run</UserId><Account>123456789012</Account>",
                iam.caller_arn
            ),
        )),
        "GetRole" => {
            let name = form.iter().find(|(k, _)| k == "RoleName")?.1.clone();
            let role = iam.caller_arn.split('/').nth(1)?;
            if name != role {
                return None;
            }
            let account = iam.caller_arn.split(':').nth(4)?;
            Some(query_answer(
                action,
                "https://iam.amazonaws.com/doc/2010-05-08/",
                &format!(
                    "<Role><Path>/</Path><RoleName>{name}</RoleName><Arn>arn:aws:iam::{account}:role/{name}</Arn></Role>"
                ),
            ))
        }
        "SimulatePrincipalPolicy" => {
            let value_of = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
            let resource = value_of("ResourceArns.member.1").unwrap_or_else(|| "*".into());
            let mut context: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for i in 1.. {
                let at = format!("ContextEntries.member.{i}");
                let Some(key) = value_of(&format!("{at}.ContextKeyName")) else {
                    break;
                };
                let values = (1..)
                    .map_while(|j| value_of(&format!("{at}.ContextKeyValues.member.{j}")))
                    .collect();
                context.insert(key, values);
            }
            let mut results = String::new();
            let start: usize = value_of("Marker").and_then(|m| m.parse().ok()).unwrap_or(0);
            let actions: Vec<&String> = form
                .iter()
                .filter(|(k, _)| k.starts_with("ActionNames.member."))
                .map(|(_, v)| v)
                .collect();
            let end = iam
                .page_size
                .map_or(actions.len(), |n| (start + n).min(actions.len()));
            for (key, value) in &form {
                if key.starts_with("ActionNames.member.") && actions[start..end].contains(&value) {
                    let (decision, missing) = match &iam.policy {
                        Some(policy) => evaluate(policy, value, &resource, &context),
                        None if iam.denied.contains(value) => ("implicitDeny", Vec::new()),
                        None => ("allowed", Vec::new()),
                    };
                    let missing: String = missing
                        .iter()
                        .map(|m| format!("<member>{m}</member>"))
                        .collect();
                    results.push_str(&format!(
                        "<member><EvalActionName>{value}</EvalActionName><EvalResourceName>{resource}</EvalResourceName><EvalDecision>{decision}</EvalDecision><MatchedStatements/><MissingContextValues>{missing}</MissingContextValues></member>"
                    ));
                }
                if key == "PolicySourceArn" {
                    state.lock().unwrap().simulated.push(value.clone());
                }
            }
            Some(query_answer(
                action,
                "https://iam.amazonaws.com/doc/2010-05-08/",
                &if end < actions.len() {
                    format!(
                        "<IsTruncated>true</IsTruncated><Marker>{end}</Marker><EvaluationResults>{results}</EvaluationResults>"
                    )
                } else {
                    format!(
                        "<IsTruncated>false</IsTruncated><EvaluationResults>{results}</EvaluationResults>"
                    )
                },
            ))
        }
        _ => None,
    }
}

/// One kind of failure, for the first `times` requests matching `action` (`None`: any request).
#[derive(Debug, Clone)]
pub struct Fault {
    /// The action (`CreateChangeSet`, `PUT`, ...) it applies to; `None` for every request.
    pub action: Option<String>,
    /// How many matching requests fail.
    pub times: usize,
    /// How.
    pub kind: FaultKind,
}

/// How a request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// 400 Throttling (query APIs) or 503 SlowDown (S3), not forwarded.
    Throttle,
    /// 503 Service Unavailable, not forwarded.
    Unavailable,
    /// The connection is closed without an answer, not forwarded.
    Reset,
    /// Forwarded, but the answer is held back this long (past the client's timeout).
    Delay(std::time::Duration),
}

#[derive(Debug, Default)]
struct State {
    actions: Vec<String>,
    /// DescribeStackDriftDetectionStatus calls answered.
    drift_polls: usize,
    executed: bool,
    cancelled: bool,
    /// Requests each fault has hit so far.
    hits: Vec<usize>,
    /// ExecuteChangeSet tokens already executed: CloudFormation treats a repeat as done.
    tokens: std::collections::HashSet<String>,
    /// CreateChangeSet answers by ClientToken, CreateStack answers by ClientRequestToken
    /// (`None` while the first is upstream): CloudFormation answers a repeat as it answered the
    /// first.
    change_sets: std::collections::HashMap<String, Option<Vec<u8>>>,
    injected: usize,
    /// PolicySourceArn of every simulation asked for.
    simulated: Vec<String>,
    /// Every request, in order, until [`Proxy::clear`].
    recorded: Vec<Recorded>,
}

/// A running proxy; threads end with the process.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, rules: Rules) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        // CloudFormation checks a new stack's name atomically (a second CreateStack of the name
        // gets AlreadyExistsException); moto, serving each request on a thread of its own, may
        // let two through at once: this proxy sends CreateStack upstream one at a time.
        let creates = Arc::new(Mutex::new(()));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, state, rules) = (upstream.clone(), shared.clone(), rules.clone());
                let creates = creates.clone();
                std::thread::spawn(move || serve(client, &upstream, &state, &rules, &creates));
            }
        });
        Proxy { endpoint, state }
    }

    /// Every action seen, in order.
    pub fn actions(&self) -> Vec<String> {
        self.state.lock().unwrap().actions.clone()
    }

    /// How many faults were injected.
    pub fn injected(&self) -> usize {
        self.state.lock().unwrap().injected
    }

    /// The principal of every policy simulation, in order.
    pub fn simulated(&self) -> Vec<String> {
        self.state.lock().unwrap().simulated.clone()
    }

    /// How many times `action` was called.
    pub fn count(&self, action: &str) -> usize {
        self.actions().iter().filter(|a| *a == action).count()
    }

    /// Every request since the last [`Proxy::clear`].
    pub fn recorded(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().recorded.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear(&self) {
        self.state.lock().unwrap().recorded.clear();
    }
}

/// One HTTP message: the head (start line and headers, without the blank line) and the body.
struct Message {
    head: String,
    body: Vec<u8>,
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads one message; `bodiless`: a response to HEAD, whose Content-Length describes no body.
fn read_message(reader: &mut impl BufRead, bodiless: bool) -> Option<Message> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let mut body = Vec::new();
    if bodiless {
        return Some(Message { head, body });
    }
    if header(&head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        // Decode, and forward with a Content-Length instead.
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
        head = head
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("transfer-encoding"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    } else if let Some(length) =
        header(&head, "content-length").and_then(|v| v.parse::<usize>().ok())
    {
        body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
    }
    Some(Message { head, body })
}

fn with_length(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out: String = head
        .lines()
        .filter(|l| {
            !l.to_ascii_lowercase().starts_with("content-length")
                && !l.to_ascii_lowercase().starts_with("connection")
        })
        .map(|l| format!("{l}\r\n"))
        .collect();
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: keep-alive\r\n\r\n",
        body.len()
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn forward(upstream: &str, request: &Message, account: Option<&str>) -> Option<Message> {
    let mut conn = TcpStream::connect(upstream).ok()?;
    let mut head: String = request
        .head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    if let Some(account) = account {
        head.push_str(&format!("x-moto-account-id: {account}\r\n"));
    }
    conn.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes())
        .ok()?;
    conn.write_all(&request.body).ok()?;
    let head_request = request.head.starts_with("HEAD ");
    read_message(&mut BufReader::new(conn), head_request)
}

fn action_of(request: &Message) -> String {
    let body = String::from_utf8_lossy(&request.body);
    body.split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .map(str::to_string)
        .or_else(|| header(&request.head, "x-amz-target").map(str::to_string))
        .unwrap_or_else(|| request.head.lines().next().unwrap_or_default().to_string())
}

fn serve(
    client: TcpStream,
    upstream: &str,
    state: &Mutex<State>,
    rules: &Rules,
    creates: &Mutex<()>,
) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut writer = client;
    while let Some(request) = read_message(&mut reader, false) {
        let action = action_of(&request);
        {
            let mut start = request.head.lines().next().unwrap_or_default().split(' ');
            let recorded = Recorded {
                method: start.next().unwrap_or_default().to_string(),
                url: start.next().unwrap_or_default().to_string(),
                body: request.body.clone(),
                target: header(&request.head, "x-amz-target").map(str::to_string),
            };
            state.lock().unwrap().recorded.push(recorded);
        }
        let fault = {
            let mut s = state.lock().unwrap();
            if s.hits.len() < rules.faults.len() {
                s.hits = vec![0; rules.faults.len()];
            }
            let mut chosen = None;
            for (i, f) in rules.faults.iter().enumerate() {
                if f.action.as_deref().is_none_or(|a| action.starts_with(a)) && s.hits[i] < f.times
                {
                    s.hits[i] += 1;
                    chosen = Some(f.kind);
                    break;
                }
            }
            if chosen.is_some() {
                s.injected += 1;
            }
            chosen
        };
        let is_s3 = !request.body.starts_with(b"Action=")
            && header(&request.head, "x-amz-target").is_none();
        match fault {
            Some(FaultKind::Throttle) => {
                let (status, body) = if is_s3 {
                    (
                        "503 Slow Down",
                        "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
                    )
                } else {
                    (
                        "400 Bad Request",
                        "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>proxy</RequestId></ErrorResponse>",
                    )
                };
                let head = format!("HTTP/1.1 {status}\r\nContent-Type: text/xml\r\n");
                if writer
                    .write_all(&with_length(&head, body.as_bytes()))
                    .is_err()
                {
                    return;
                }
                continue;
            }
            Some(FaultKind::Unavailable) => {
                let head = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n";
                if writer
                    .write_all(&with_length(head, b"unavailable"))
                    .is_err()
                {
                    return;
                }
                continue;
            }
            Some(FaultKind::Reset) => return,
            _ => {}
        }
        // CloudFormation executes a change set once per ClientRequestToken; a retry is acknowledged.
        if action == "ExecuteChangeSet" {
            let body = String::from_utf8_lossy(&request.body).into_owned();
            let token = body
                .split('&')
                .find_map(|kv| kv.strip_prefix("ClientRequestToken="))
                .unwrap_or_default()
                .to_string();
            let repeat = !token.is_empty() && !state.lock().unwrap().tokens.insert(token);
            if repeat {
                state
                    .lock()
                    .unwrap()
                    .actions
                    .push("ExecuteChangeSet (repeat, acknowledged)".into());
                let body = b"<ExecuteChangeSetResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><ExecuteChangeSetResult/><ResponseMetadata><RequestId>proxy</RequestId></ResponseMetadata></ExecuteChangeSetResponse>";
                if writer
                    .write_all(&with_length(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n",
                        body,
                    ))
                    .is_err()
                {
                    return;
                }
                continue;
            }
        }
        // CloudFormation creates one change set per ClientToken, one stack per CreateStack
        // ClientRequestToken, and answers a retry as it answered the first (moto would make a
        // second stack of the same name, or refuse the retry with AlreadyExists).
        let token_field = match action.as_str() {
            "CreateChangeSet" => Some("ClientToken="),
            "CreateStack" => Some("ClientRequestToken="),
            _ => None,
        };
        let change_set_token = token_field.and_then(|field| {
            String::from_utf8_lossy(&request.body)
                .split('&')
                .find_map(|kv| kv.strip_prefix(field))
                .map(|token| format!("{action} {token}"))
        });
        if let Some(token) = &change_set_token {
            let first = {
                let mut s = state.lock().unwrap();
                let first = !s.change_sets.contains_key(token);
                if first {
                    s.change_sets.insert(token.clone(), None);
                }
                first
            };
            if !first {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                let answer = loop {
                    let answer = state
                        .lock()
                        .unwrap()
                        .change_sets
                        .get(token)
                        .cloned()
                        .flatten();
                    match answer {
                        Some(answer) => break Some(answer),
                        None if std::time::Instant::now() > deadline => break None,
                        None => std::thread::sleep(std::time::Duration::from_millis(20)),
                    }
                };
                if let Some(answer) = answer {
                    state
                        .lock()
                        .unwrap()
                        .actions
                        .push(format!("{action} (repeat, first answer)"));
                    if writer.write_all(&answer).is_err() {
                        return;
                    }
                    continue;
                }
            }
        }
        let (executed, cancelled) = {
            let mut s = state.lock().unwrap();
            s.actions.push(action.clone());
            let creates_held = action == "CreateStack"
                && rules.hold_stack.as_ref().is_some_and(|stack| {
                    String::from_utf8_lossy(&request.body)
                        .split('&')
                        .any(|kv| kv == format!("StackName={stack}"))
                });
            match action.as_str() {
                "ExecuteChangeSet" => s.executed = true,
                _ if creates_held => s.executed = true,
                "CancelUpdateStack" => s.cancelled = true,
                _ => {}
            }
            (s.executed, s.cancelled)
        };
        if let Some(answer) = rules
            .iam
            .as_ref()
            .and_then(|iam| iam_answer(iam, &action, &request, state))
        {
            if writer.write_all(&answer).is_err() {
                return;
            }
            continue;
        }
        if let (Some(products), "AWSPriceListService.GetProducts") =
            (&rules.pricing, action.as_str())
        {
            if writer
                .write_all(&pricing_answer(products, &request))
                .is_err()
            {
                return;
            }
            continue;
        }
        if let Some(answer) = rules
            .drift
            .as_ref()
            .and_then(|drift| drift_answer(drift, &action, state))
        {
            if writer.write_all(&answer).is_err() {
                return;
            }
            continue;
        }
        if action == "CancelUpdateStack" {
            let body = b"<CancelUpdateStackResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><ResponseMetadata><RequestId>proxy</RequestId></ResponseMetadata></CancelUpdateStackResponse>";
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n";
            if writer.write_all(&with_length(head, body)).is_err() {
                return;
            }
            continue;
        }
        let one_at_a_time =
            (action == "CreateStack").then(|| creates.lock().unwrap_or_else(|e| e.into_inner()));
        let forwarded = forward(upstream, &request, rules.account.as_deref());
        drop(one_at_a_time);
        let Some(response) = forwarded else {
            if let Some(token) = &change_set_token {
                state.lock().unwrap().change_sets.remove(token);
            }
            return;
        };
        if let Some(token) = &change_set_token {
            state.lock().unwrap().change_sets.insert(
                token.clone(),
                Some(with_length(&response.head, &response.body)),
            );
        }
        if let Some(FaultKind::Delay(d)) = fault {
            // The request took effect upstream; the client gives up waiting and retries.
            std::thread::sleep(d);
        }
        if request.head.starts_with("HEAD ") {
            let raw = format!("{}\r\n", response.head);
            if writer.write_all(raw.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        if action != "DescribeStacks" && action != "DescribeChangeSet" {
            // Binary bodies pass untouched.
            if writer
                .write_all(&with_length(&response.head, &response.body))
                .is_err()
            {
                return;
            }
            continue;
        }
        let mut body = String::from_utf8_lossy(&response.body).into_owned();
        let held = rules
            .hold_stack
            .as_ref()
            .filter(|stack| body.contains(&format!("<StackName>{stack}</StackName>")));
        if action == "DescribeStacks" && executed && held.is_some() {
            let (create, update) = if !cancelled {
                ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS")
            } else if rules.cancel_completes {
                ("CREATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")
            } else {
                ("CREATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS")
            };
            body = body
                .replace(
                    "<StackStatus>CREATE_COMPLETE</StackStatus>",
                    &format!("<StackStatus>{create}</StackStatus>"),
                )
                .replace(
                    "<StackStatus>UPDATE_COMPLETE</StackStatus>",
                    &format!("<StackStatus>{update}</StackStatus>"),
                );
        }
        // After a detection that found drift, DescribeStacks reports it, as CloudFormation's
        // `DriftInformation` does (moto sends none).
        let found_drift = rules.drift.as_ref().is_some_and(|d| {
            state.lock().unwrap().drift_polls > d.polls_in_progress
                && d.resources
                    .iter()
                    .any(|r| r.2 == "MODIFIED" || r.2 == "DELETED")
        });
        if action == "DescribeStacks" && found_drift {
            body = body.replace(
                "</StackStatus>",
                "</StackStatus><DriftInformation><StackDriftStatus>DRIFTED</StackDriftStatus><LastCheckTimestamp>2030-01-01T00:00:00.000Z</LastCheckTimestamp></DriftInformation>",
            );
        }
        if action == "DescribeChangeSet" && rules.hold_change_sets {
            body = body.replace(
                "<Status>CREATE_COMPLETE</Status>",
                "<Status>CREATE_PENDING</Status>",
            );
        }
        if writer
            .write_all(&with_length(&response.head, body.as_bytes()))
            .is_err()
        {
            return;
        }
    }
}
