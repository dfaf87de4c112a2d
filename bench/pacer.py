"""A loopback proxy in front of moto that gives it CloudFormation's and Lambda's pace.

moto finishes every operation at once. Through this proxy:
- a stack operation (CreateStack, UpdateStack, ExecuteChangeSet, DeleteStack) takes D seconds:
  DescribeStacks answers `*_IN_PROGRESS` until D after it began, and DescribeStackEvents shows the
  resources it touches (all of the template's for a create or delete, the change set's for an
  update) starting and finishing one after another over the first D - 1 seconds, then the
  stack's own end; every event carries the operation's ClientRequestToken, as on AWS. A DeleteStack reaches
  moto only after D (until then the stack is there, DELETE_IN_PROGRESS).
- a change set takes C seconds to compute (CREATE_PENDING, then moto's answer, "no changes"
  included), as CloudFormation's do;
- UpdateFunctionCode leaves LastUpdateStatus InProgress for U seconds.
Every request is counted, so a benchmark reads how many a tool made and when.

With a per-resource model (`Pacer(..., model=MODEL)`, bench/ephemeral), a stack operation takes
no fixed D: each resource it touches takes its type's time, in standard mode or in express mode
(`DeploymentConfig.Mode=EXPRESS` on CreateStack, UpdateStack, DeleteStack or the change set),
and starts once the resources it references (Ref, Fn::GetAtt, Fn::Sub, DependsOn) are done, as
CloudFormation orders them in both modes ("Deploy stacks faster with express mode": express
respects dependencies, runs the rest in parallel, and ends a resource once its configuration is
applied). The operation ends with its critical path plus the stack's own overhead. A load
balancer provisions for its standard time whatever the mode: `ready_at(stack)` says when the
stack's load balancer answers, which an express operation does not wait for.
"""

import http.client
import json
import re
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"


def parse_template(escaped):
    """A template as GetTemplate returns it: JSON, or YAML (`sam deploy` uploads YAML)."""
    import html

    import yaml

    text = html.unescape(escaped)
    try:
        return json.loads(text)
    except ValueError:
        pass

    class Loader(yaml.SafeLoader):
        pass

    # Short-form intrinsics (!Ref, !GetAtt, ...) only matter to CloudFormation.
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    try:
        return yaml.load(text, Loader=Loader) or {}
    except yaml.YAMLError:
        return {}


# The per-resource model: (standard, express) seconds per resource type. Inputs of the model,
# not measurements (this machine has no AWS); bench/results/ephemeral.md states where each comes
# from. PACE_MODEL (a JSON object of the same shape) overrides entries.
MODEL = {
    # Provisioning: CloudFormation's standard mode waits for the load balancer to be `active`.
    "AWS::ElasticLoadBalancingV2::LoadBalancer": (180.0, 5.0),
    "AWS::ElasticLoadBalancingV2::Listener": (3.0, 2.0),
    "AWS::ElasticLoadBalancingV2::ListenerRule": (2.0, 1.0),
    "AWS::ElasticLoadBalancingV2::TargetGroup": (3.0, 2.0),
    "AWS::EC2::SecurityGroup": (5.0, 3.0),
    # Standard waits for the role to propagate through IAM before dependents use it.
    "AWS::IAM::Role": (12.0, 3.0),
    # Standard waits for the function's State to be Active.
    "AWS::Lambda::Function": (8.0, 3.0),
    "AWS::Lambda::Permission": (2.0, 1.0),
    "AWS::Logs::LogGroup": (2.0, 1.0),
    # Standard waits for ACTIVE, then point-in-time recovery and TTL are applied.
    "AWS::DynamoDB::Table": (15.0, 3.0),
    "AWS::CloudWatch::Alarm": (2.0, 1.0),
    "AWS::SNS::Topic": (2.0, 1.0),
    # Standard waits for the change to be INSYNC on Route 53's name servers.
    "AWS::Route53::RecordSet": (45.0, 3.0),
}
DEFAULT_RESOURCE = (3.0, 1.0)
# The stack's own start and end around its resources.
STACK_OVERHEAD = (2.0, 1.0)
LOAD_BALANCER = "AWS::ElasticLoadBalancingV2::LoadBalancer"


def references(value):
    """Logical ids a resource's properties (or DependsOn) point at."""
    found = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                found.add(v)
            elif k == "Fn::GetAtt":
                target = v[0] if isinstance(v, list) and v else (v.split(".")[0] if isinstance(v, str) else None)
                if target:
                    found.add(target)
            elif k == "Fn::Sub":
                text = v[0] if isinstance(v, list) else v
                if isinstance(text, str):
                    found.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
                found |= references(v)
            else:
                found |= references(v)
    elif isinstance(value, list):
        for v in value:
            found |= references(v)
    return found


def schedule(resources, model, express):
    """(start, end) of each resource, from 0: each starts once what it references is done."""
    times = {}
    deps = {}
    for logical, r in resources.items():
        depends = r.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else depends
        deps[logical] = {d for d in references(r.get("Properties", {})) | set(depends) if d in resources and d != logical}
        standard, fast = model.get(r.get("Type", ""), DEFAULT_RESOURCE)
        times[logical] = fast if express else standard
    done = {}

    def end(logical, seen=()):
        if logical not in done:
            if logical in seen:  # a cycle CloudFormation would refuse: no wait for it
                return 0.0
            start = max((end(d, seen + (logical,)) for d in deps[logical]), default=0.0)
            done[logical] = (start, start + times[logical])
        return done[logical][1]

    for logical in resources:
        end(logical)
    return done


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Pacer:
    def __init__(self, upstream_port, d, c, u, model=None, drift=10.0):
        self.upstream_port = upstream_port
        self.d, self.c, self.u = d, c, u
        # Drift detection (moto has none): DETECTION_IN_PROGRESS for this long, then every
        # resource of the stack IN_SYNC.
        self.drift = drift
        self.detections = {}  # detection id -> (stack name, when it began)
        self.model = model
        self.express_change_sets = set()  # change sets (name or ARN) made in express mode
        self.ready = {}  # stack name -> when its load balancer answers
        self.lock = threading.Lock()
        self.ops = {}  # stack name -> the running or last operation
        self.events = {}  # stack name -> synthesized events, oldest first
        self.change_sets = {}  # change set name or ARN -> when it was created
        self.code_updates = {}  # function name -> when its code update began
        self.requests = []  # (time, what)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()

    def count(self):
        with self.lock:
            return len(self.requests)

    def count_waiting(self):
        """Requests made while AWS had something running (an operation, a change set, a code update)."""
        with self.lock:
            return sum(1 for r in self.requests if r[2])

    def waiting(self):
        """Whether something is running now (called with the lock held)."""
        now = time.time()
        return (any(now < op["start"] + op["d"] for op in self.ops.values())
                or any(now < t + self.c for t in self.change_sets.values())
                or any(now < t + self.u for t in self.code_updates.values()))

    # --- upstream -----------------------------------------------------------------------------
    def forward(self, method, path, headers, body):
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        headers = {k: v for k, v in headers.items() if k.lower() not in ("transfer-encoding", "connection")}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out = (resp.status, resp.reason, [(k, v) for k, v in resp.getheaders() if k.lower() not in ("transfer-encoding", "content-length", "connection")], data)
        conn.close()
        return out

    def cfn(self, action, **params):
        body = urllib.parse.urlencode({"Action": action, "Version": "2010-05-15", **params}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/cloudformation/aws4_request, SignedHeaders=host, Signature=x"}
        return self.forward("POST", "/", headers, body)[3].decode()

    # --- the pace ----------------------------------------------------------------------------
    def begin(self, name, kind, token, stack_id, start, changed=None, express=False):
        """An operation on `name` began at `start` (when its request arrived). As CloudFormation
        shows it: the resources it touches (`changed`, the change set's logical ids, for an
        update; every resource of the template otherwise) start and finish one after another
        over the first D - 1 seconds, then the stack's own end at D (after a cleanup phase for
        an update); with a per-resource model, when the model schedules them. Returns the
        operation's duration."""
        template = self.cfn("GetTemplate", StackName=name)
        body = re.search(r"<TemplateBody>(.*?)</TemplateBody>", template, re.S)
        all_resources = parse_template(body.group(1) if body else "").get("Resources", {})
        resources = list(all_resources.items())
        if changed is not None:
            resources = [(logical, r) for logical, r in resources if logical in changed]
        verb = {"CREATE": "CREATE", "UPDATE": "UPDATE", "DELETE": "DELETE"}[kind]
        events = [(start, name, "AWS::CloudFormation::Stack", f"{verb}_IN_PROGRESS", "User Initiated")]
        if self.model is None:
            d = self.d
            n = len(resources)
            span = max(d - 1.0, d / 2)
            for i, (logical, r) in enumerate(resources):
                events.append((start + span * (i + 0.5) / n, logical, r.get("Type", ""), f"{verb}_IN_PROGRESS", ""))
                events.append((start + span * (i + 1) / n, logical, r.get("Type", ""), f"{verb}_COMPLETE", ""))
        else:
            overhead = STACK_OVERHEAD[1] if express else STACK_OVERHEAD[0]
            planned = schedule(dict(resources), self.model, express)
            if kind == "DELETE":  # dependents go first: the same path, run backwards
                last = max((e for _, e in planned.values()), default=0.0)
                planned = {k: (last - e, last - b) for k, (b, e) in planned.items()}
            for logical, r in resources:
                b, e = planned[logical]
                events.append((start + overhead / 2 + b, logical, r.get("Type", ""), f"{verb}_IN_PROGRESS", ""))
                events.append((start + overhead / 2 + e, logical, r.get("Type", ""), f"{verb}_COMPLETE", ""))
                if r.get("Type") == LOAD_BALANCER and kind != "DELETE":
                    provisioning = self.model.get(LOAD_BALANCER, DEFAULT_RESOURCE)[0]
                    with self.lock:
                        self.ready[name] = start + overhead / 2 + b + provisioning
            d = overhead + max((e for _, e in planned.values()), default=0.0)
        if kind == "UPDATE":
            events.append((start + d - 0.5, name, "AWS::CloudFormation::Stack", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", ""))
        events.append((start + d, name, "AWS::CloudFormation::Stack", f"{verb}_COMPLETE", ""))
        with self.lock:
            self.ops[name] = {"start": start, "kind": kind, "id": stack_id, "d": d}
            self.events.setdefault(name, []).extend(
                {"t": t, "logical": l, "type": ty, "status": s, "reason": why, "token": token, "id": str(uuid.uuid4()), "stack_id": stack_id}
                for t, l, ty, s, why in sorted(events, key=lambda e: e[0]))
        return d

    def drift_answer(self, action, params, now):
        """The three drift calls as CloudFormation's API Reference documents them."""
        def answer(result):
            return (f'<{action}Response xmlns="{NS}"><{action}Result>{result}</{action}Result>'
                    f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>")
        if action == "DetectStackDrift":
            detection = str(uuid.uuid4())
            with self.lock:
                self.detections[detection] = (params.get("StackName", ""), now)
            return answer(f"<StackDriftDetectionId>{detection}</StackDriftDetectionId>")
        if action == "DescribeStackDriftDetectionStatus":
            detection = params.get("StackDriftDetectionId", "")
            with self.lock:
                _, began = self.detections.get(detection, ("", now))
            if now < began + self.drift:
                status = "<DetectionStatus>DETECTION_IN_PROGRESS</DetectionStatus>"
            else:
                status = "<StackDriftStatus>IN_SYNC</StackDriftStatus><DetectionStatus>DETECTION_COMPLETE</DetectionStatus><DriftedStackResourceCount>0</DriftedStackResourceCount>"
            return answer(f"<StackId>stack</StackId><StackDriftDetectionId>{detection}</StackDriftDetectionId>{status}<Timestamp>{iso(now)}</Timestamp>")
        name = params.get("StackName", "")
        template = self.cfn("GetTemplate", StackName=name)
        body = re.search(r"<TemplateBody>(.*?)</TemplateBody>", template, re.S)
        resources = parse_template(body.group(1) if body else "").get("Resources", {})
        members = "".join(
            f"<member><StackId>stack</StackId><LogicalResourceId>{logical}</LogicalResourceId><PhysicalResourceId>{logical}</PhysicalResourceId>"
            f"<ResourceType>{r.get('Type', '')}</ResourceType><StackResourceDriftStatus>IN_SYNC</StackResourceDriftStatus><Timestamp>{iso(now)}</Timestamp></member>"
            for logical, r in resources.items())
        return answer(f"<StackResourceDrifts>{members}</StackResourceDrifts>")

    def ready_at(self, name):
        """When the load balancer of stack `name` answers (per-resource model); None without one."""
        with self.lock:
            return self.ready.get(name)

    def running(self, name_or_id):
        with self.lock:
            for name, op in self.ops.items():
                if name_or_id in (name, op["id"]) and time.time() < op["start"] + op["d"]:
                    return name, op
        return None

    def stack_of(self, name_or_id):
        with self.lock:
            for name, op in self.ops.items():
                if name_or_id in (name, op["id"]):
                    return name
        return None

    def events_xml(self, name):
        now = time.time()
        with self.lock:
            visible = [e for e in self.events.get(name, []) if e["t"] <= now]
        members = "".join(
            f"<member><StackId>{e['stack_id']}</StackId><EventId>{e['id']}</EventId><StackName>{name}</StackName>"
            f"<LogicalResourceId>{e['logical']}</LogicalResourceId><PhysicalResourceId>{e['stack_id'] if e['logical'] == name else e['logical']}</PhysicalResourceId>"
            f"<ResourceType>{e['type']}</ResourceType><Timestamp>{iso(e['t'])}</Timestamp><ResourceStatus>{e['status']}</ResourceStatus>"
            + (f"<ResourceStatusReason>{e['reason']}</ResourceStatusReason>" if e["reason"] else "")
            + (f"<ClientRequestToken>{e['token']}</ClientRequestToken>" if e["token"] else "")
            + "</member>"
            for e in reversed(visible))
        return (f'<DescribeStackEventsResponse xmlns="{NS}"><DescribeStackEventsResult><StackEvents>{members}</StackEvents>'
                f"</DescribeStackEventsResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></DescribeStackEventsResponse>")

    def _handler(self):
        pacer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else (b"" if self.command in ("POST", "PUT") else None)

            def reply(self, status, reason, headers, data):
                self.send_response(status, reason)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def handle_any(self):
                try:
                    self.paced()
                except Exception:  # a broken pace must show, not hang a tool
                    import traceback
                    traceback.print_exc()
                    raise

            def paced(self):
                body = self.body()
                params = {}
                if body and self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                    params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(), keep_blank_values=True).items()}
                arrived = time.time()
                action = params.get("Action") or f"{self.command} {self.path.split('?')[0]}"
                with pacer.lock:
                    pacer.requests.append((time.time(), action, pacer.waiting()))
                headers = dict(self.headers.items())
                name = params.get("StackName", "")

                if action == "DeleteStack":
                    stack = pacer.stack_of(name) or name
                    described = pacer.cfn("DescribeStacks", StackName=name)
                    stack_id = (re.search(r"<StackId>(.*?)</StackId>", described) or [None, name])[1]
                    stack_name = (re.search(r"<StackName>(.*?)</StackName>", described) or [None, stack])[1]
                    if "<StackStatus>DELETE_COMPLETE" not in described and not pacer.running(stack_name):
                        express = params.get("DeploymentConfig.Mode") == "EXPRESS"
                        d = pacer.begin(stack_name, "DELETE", params.get("ClientRequestToken"), stack_id, arrived, express=express)
                        threading.Timer(max(0.0, arrived + d - time.time()), lambda: pacer.forward("POST", self.path, headers, body)).start()
                    data = f'<DeleteStackResponse xmlns="{NS}"><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></DeleteStackResponse>'
                    return self.reply(200, "OK", [("Content-Type", "text/xml")], data.encode())

                if action in ("DetectStackDrift", "DescribeStackDriftDetectionStatus", "DescribeStackResourceDrifts"):
                    data = pacer.drift_answer(action, params, arrived)
                    return self.reply(200, "OK", [("Content-Type", "text/xml")], data.encode())

                if action == "DescribeStackEvents":
                    stack = pacer.stack_of(name)
                    if stack:
                        return self.reply(200, "OK", [("Content-Type", "text/xml")], pacer.events_xml(stack).encode())

                status, reason, out_headers, data = pacer.forward(self.command, self.path, headers, body)
                text = None
                if status == 200 and action in ("CreateStack", "UpdateStack", "ExecuteChangeSet"):
                    changed = None
                    express = params.get("DeploymentConfig.Mode") == "EXPRESS"
                    if action == "ExecuteChangeSet":
                        with pacer.lock:
                            express = params["ChangeSetName"] in pacer.express_change_sets
                        cs = pacer.cfn("DescribeChangeSet", ChangeSetName=params["ChangeSetName"], **({"StackName": name} if name else {}))
                        name = re.search(r"<StackName>(.*?)</StackName>", cs)[1]
                        changed = set(re.findall(r"<LogicalResourceId>(.*?)</LogicalResourceId>", cs))
                    described = pacer.cfn("DescribeStacks", StackName=name)
                    stack_id = re.search(r"<StackId>(.*?)</StackId>", described)[1]
                    kind = "UPDATE" if re.search(r"<StackStatus>UPDATE_", described) else "CREATE"
                    if kind == "UPDATE" and changed is None:
                        changed = set()  # UpdateStack: tags or parameters; no resource listed
                    pacer.begin(name, kind, params.get("ClientRequestToken"), stack_id, arrived,
                                changed if kind == "UPDATE" else None, express=express)
                elif status == 200 and action == "CreateChangeSet":
                    text = data.decode()
                    with pacer.lock:
                        now = arrived
                        pacer.change_sets[params.get("ChangeSetName")] = now
                        found = re.search(r"<Id>(.*?)</Id>", text)
                        if found:
                            pacer.change_sets[found[1]] = now
                        if params.get("DeploymentConfig.Mode") == "EXPRESS":
                            pacer.express_change_sets.add(params.get("ChangeSetName"))
                            if found:
                                pacer.express_change_sets.add(found[1])
                elif status == 200 and action == "DescribeStacks" and name:
                    running = pacer.running(name)
                    if running:
                        verb = running[1]["kind"]
                        data = re.sub(r"<StackStatus>[A-Z_]+</StackStatus>", f"<StackStatus>{verb}_IN_PROGRESS</StackStatus>", data.decode()).encode()
                elif status == 200 and action == "DescribeChangeSet":
                    with pacer.lock:
                        began = pacer.change_sets.get(params.get("ChangeSetName"))
                    if began is not None and time.time() < began + pacer.c:
                        text = data.decode()
                        text = re.sub(r"<Status>[A-Z_]+</Status>", "<Status>CREATE_PENDING</Status>", text)
                        text = re.sub(r"<ExecutionStatus>[A-Z_]+</ExecutionStatus>", "<ExecutionStatus>UNAVAILABLE</ExecutionStatus>", text)
                        text = re.sub(r"<StatusReason>.*?</StatusReason>", "", text, flags=re.S)
                        text = re.sub(r"<Changes>.*</Changes>", "<Changes/>", text, flags=re.S)
                        data = text.encode()
                # Lambda (REST JSON): the code update, then its status.
                m = re.match(r"^/2015-03-31/functions/([^/?]+)(/code|/configuration)?", self.path)
                if m and status in (200, 201):
                    function = urllib.parse.unquote(m[1]).split(":")[-1]
                    if self.command == "PUT" and m[2] == "/code":
                        with pacer.lock:
                            pacer.code_updates[function] = arrived
                    with pacer.lock:
                        began = pacer.code_updates.get(function)
                    if began is not None and time.time() < began + pacer.u and b"LastUpdateStatus" in data:
                        data = data.replace(b'"LastUpdateStatus": "Successful"', b'"LastUpdateStatus": "InProgress"')
                        data = data.replace(b'"LastUpdateStatus":"Successful"', b'"LastUpdateStatus":"InProgress"')
                return self.reply(status, reason, out_headers, data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any

        return Handler
