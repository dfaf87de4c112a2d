"""deployer against `aws cloudformation deploy` and `sam deploy`, same moto, same template.

For each round and each tool (the order rotates every round to cancel drift): create, no-op
redeploy, update (memory 256 -> 512), delete. Reports medians, ratios (peer / deployer), the
AWS API requests each tool made (moto's request recorder), and the exit code of the no-op.

Then the same through bench/pacer.py, which gives moto CloudFormation's pace (PACE_D seconds
per stack operation, PACE_C per change set, PACE_U per Lambda code update; 20/3/3 by default,
PACED_ROUNDS=3): what a tool adds to what AWS makes everyone wait for, and how often it asks.
"""

import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pacer as pacing  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEPLOYER = Path(os.environ.get("DEPLOYER_BIN", ROOT / "target/release/deployer"))
AWS = ROOT / ".venv-peers/aws/bin/aws"
SAM = ROOT / ".venv-peers/sam/bin/sam"
ROUNDS = int(os.environ.get("ROUNDS", "5"))
PHASES = ["create", "no-op", "update", "delete"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    work = Path(tempfile.mkdtemp(prefix="deployer-peers-"))
    recording = work / "recording.jsonl"
    port = free_port()
    env = moto_env(port)
    moto = start_moto(port, work, env, {"MOTO_ENABLE_RECORDING": "True", "MOTO_RECORDER_FILEPATH": str(recording)})
    try:
        instant = run(work, env, recording)
        d, c, u = (float(os.environ.get(k, v)) for k, v in (("PACE_D", "20"), ("PACE_C", "3"), ("PACE_U", "3")))
        rounds = int(os.environ.get("PACED_ROUNDS", "3"))
        if rounds == 0:
            return report(*instant, paced=None)
        pacer = pacing.Pacer(port, d, c, u)
        try:
            paced_env = {**env, "AWS_ENDPOINT_URL": f"http://localhost:{pacer.port}"}
            paced = run(work, paced_env, None, pacer=pacer, rounds=rounds)
        finally:
            pacer.close()
        return report(*instant, paced=(d, c, u, rounds, paced))
    finally:
        moto.terminate()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)


def moto_env(port):
    """The environment every tool runs with: moto's endpoint, dummy credentials, no host config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        # `localhost`, not 127.0.0.1: moto reads the bucket of a TemplateURL (which `sam deploy`
        # sends) from the host name unless the URL says localhost.
        AWS_ENDPOINT_URL=f"http://localhost:{port}",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        SAM_CLI_TELEMETRY="0",
        NO_COLOR="1",
    )
    return env


def start_moto(port, work, env, extra=None):
    """moto's server on `port`, once it accepts connections."""
    moto = subprocess.Popen(
        [str(ROOT / ".venv/bin/moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env={**env, **(extra or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=work,
    )
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return moto


def placeholder_zip(path, marker="placeholder: moto stores Lambda code but never runs it"):
    """A deployment zip whose `bootstrap` is a shell comment, deterministic byte for byte."""
    info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o100755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(info, f"#!/bin/sh\n# {marker}\n")


def sh(cmd, env, cwd):
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - start, out


def requests_made(recording):
    return sum(1 for line in recording.read_text().splitlines() if line.strip()) if recording.exists() else 0


def run(work, env, recording, pacer=None, rounds=ROUNDS):
    # Shared groundwork, untimed: the bootstrap stack (bucket + VPC) and one artifact.
    project = work / "project"
    (project / "stacks").mkdir(parents=True, exist_ok=True)
    spec = (ROOT / "stacks/example.yaml").read_text()
    (project / "stacks/example.yaml").write_text(spec)
    (project / "stacks/bigger.yaml").write_text(spec.replace("memory: 256", "memory: 512"))
    artifact = project / "api.zip"
    info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o100755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(artifact, "w") as z:
        z.writestr(info, "#!/bin/sh\n# placeholder: moto stores Lambda code but never runs it\n")
    # Two more builds of the same function, for the code-only changes of the paced run.
    for n in (2, 3):
        with zipfile.ZipFile(project / f"api{n}.zip", "w") as z:
            z.writestr(info, f"#!/bin/sh\n# placeholder, build {n}\n")
    _, boot = sh([str(DEPLOYER), "bootstrap", "--json"], env, project)
    if boot.returncode != 0:
        sys.exit(f"deployer bootstrap failed: {boot.stderr}")
    b = json.loads(boot.stdout.splitlines()[-1])
    # Upload the artifact once through deployer (content-addressed key) for the peers to use: an
    # `up` of a warm-up env of this run, left standing (`plan` uploads nothing; and moto keeps a
    # deleted stack's target groups, whose names a second `up` of the same env would reuse).
    warm_env = f"warmup{'p' if pacer else 'r'}"
    _, warm = sh([str(DEPLOYER), "up", "-s", "stacks/example.yaml", "--env", warm_env, "--artifact", f"api={artifact}", "--yes", "--json"], env, project)
    if warm.returncode != 0:
        sys.exit(f"deployer up of the warm-up env failed: {warm.stderr}")
    key = next(json.loads(l)["key"] for l in warm.stdout.splitlines() if '"artifact"' in l)

    def template(spec_file, env_name):
        path = project / f"{env_name}-{spec_file}.json"
        _, out = sh([str(DEPLOYER), "render", "-s", f"stacks/{spec_file}", "--env", env_name, "--format", "json", "-o", str(path)], env, project)
        if out.returncode != 0:
            sys.exit(out.stderr)
        return path

    params = [f"ApiCodeBucket={b['bucket']}", f"ApiCodeKey={key}", f"NetworkVpcId={b['vpc_id']}", f"NetworkSubnetIds={','.join(b['subnet_ids'])}"]

    def deployer_tool(env_name):
        art = f"api={artifact}"
        return {
            "create": [str(DEPLOYER), "up", "-q", "-s", "stacks/example.yaml", "--env", env_name, "--artifact", art, "--yes"],
            "no-op": [str(DEPLOYER), "up", "-q", "-s", "stacks/example.yaml", "--env", env_name, "--artifact", art, "--yes"],
            "update": [str(DEPLOYER), "up", "-q", "-s", "stacks/bigger.yaml", "--env", env_name, "--artifact", art, "--yes"],
            "delete": [[str(DEPLOYER), "down", "-q", "-s", "stacks/example.yaml", "--env", env_name, "--yes"]],
        }

    def aws_tool(env_name):
        stack = f"notes-{env_name}"
        deploy = lambda t: [str(AWS), "cloudformation", "deploy", "--stack-name", stack, "--template-file", str(t), "--capabilities", "CAPABILITY_IAM", "--parameter-overrides", *params]
        return {
            "create": deploy(template("example.yaml", env_name)),
            "no-op": deploy(template("example.yaml", env_name)),
            "update": deploy(template("bigger.yaml", env_name)),
            "delete": [[str(AWS), "cloudformation", "delete-stack", "--stack-name", stack], [str(AWS), "cloudformation", "wait", "stack-delete-complete", "--stack-name", stack]],
        }

    def sam_tool(env_name):
        stack = f"notes-{env_name}"
        deploy = lambda t: [str(SAM), "deploy", "--stack-name", stack, "--template-file", str(t), "--capabilities", "CAPABILITY_IAM", "--no-confirm-changeset", "--s3-bucket", b["bucket"], "--region", "us-east-1", "--parameter-overrides", *params]
        return {
            "create": deploy(template("example.yaml", env_name)),
            "no-op": deploy(template("example.yaml", env_name)),
            "update": deploy(template("bigger.yaml", env_name)),
            "delete": [[str(SAM), "delete", "--stack-name", stack, "--no-prompts", "--region", "us-east-1"]],
        }

    tools = {"deployer": deployer_tool, "aws cloudformation deploy": aws_tool, "sam deploy": sam_tool}
    names = list(tools)
    phases_of = {t: PHASES for t in names}
    if pacer:
        # deployer only: a code-only change, hotswapped, then another through CloudFormation
        # (right after the create, whose tags moto applies; it ignores an executed change set's).
        phases_of["deployer"] = PHASES[:2] + ["code (hotswap)", "code (CloudFormation)"] + PHASES[2:]
    times = {t: {p: [] for p in phases_of[t]} for t in names}
    asked = {t: {p: [] for p in phases_of[t]} for t in names}
    # Requests made while AWS was working (paced run): the polling.
    polled = {t: {p: [] for p in phases_of[t]} for t in names}
    calls = {t: [] for t in names}
    noop_exit = {t: set() for t in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for t in order:
            env_name = f"{'p' if pacer else 'r'}{r}{'dac'[names.index(t)]}"
            commands = tools[t](env_name)
            if t == "deployer":
                up = [str(DEPLOYER), "up", "-q", "-s", "stacks/example.yaml", "--env", env_name, "--yes"]
                commands["code (hotswap)"] = up + ["--artifact", f"api={project / 'api2.zip'}", "--hotswap"]
                commands["code (CloudFormation)"] = up + ["--artifact", f"api={project / 'api3.zip'}", "--no-hotswap"]
            if recording:
                recording.write_text("")
            cycle_requests = pacer.count() if pacer else 0
            for phase in phases_of[t]:
                steps = commands[phase] if phase == "delete" else [commands[phase]]
                elapsed = 0.0
                before = pacer.count() if pacer else 0
                polls_before = pacer.count_waiting() if pacer else 0
                for step in steps:
                    seconds, out = sh(step, env, project)
                    elapsed += seconds
                    if phase == "no-op":
                        noop_exit[t].add(out.returncode)
                    elif out.returncode != 0:
                        sys.exit(f"{t} {phase} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
                times[t][phase].append(elapsed)
                if pacer:
                    asked[t][phase].append(pacer.count() - before)
                    polled[t][phase].append(pacer.count_waiting() - polls_before)
            if pacer:
                calls[t].append(sum(asked[t][p][-1] for p in PHASES))
            else:
                calls[t].append(requests_made(recording))
            print(f"{'paced ' if pacer else ''}round {r + 1}/{rounds} {t}: " + ", ".join(f"{p} {times[t][p][-1]:.2f}s" for p in phases_of[t]), flush=True)
    return times, calls, noop_exit, (asked, polled)


def commit():
    """The commit measured (with `+changes` when the work tree differs from it)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return head + ("+changes" if dirty else "") if head else "?"


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def report(times, calls, noop_exit, _asked, paced):
    names = list(times)
    med = {t: {p: statistics.median(v) for p, v in times[t].items()} for t in names}
    lines = [
        "# deployer against its peers",
        "",
        f"Same moto server, same rendered template, same artifact; median of {ROUNDS} rounds, tool order rotating each round.",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}. "
        f"Versions: {version([str(DEPLOYER), '--version'])}; {version([str(AWS), '--version'])}; {version([str(SAM), '--version'])}; "
        f"moto {version([str(ROOT / '.venv/bin/python'), '-c', 'import moto; print(moto.__version__)'])}. "
        f"deployer at commit {commit()}.",
        "",
        "What the numbers include: each tool's wall time from process start to exit (deployer with `-q`), and every "
        "HTTP request it sent to moto (moto's own count). What they exclude, and would add on AWS: deployer's "
        "verification request (`GET /` through the load balancer) and its wait for a target group's health check, both "
        "skipped against an emulator (the endpoint is overridden); deployer's permission pre-flight asks STS for the "
        "caller, but moto's caller (`user/moto`) cannot be simulated, so no iam:SimulatePrincipalPolicy is sent (on AWS, "
        "one per probed resource, in parallel, before the change set). The peers make neither.",
        "",
        "| tool | create | no-op | update | delete | requests per cycle | no-op exit code |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in names:
        cells = [f"{med[t][p]:.2f} s" for p in PHASES]
        lines.append(f"| {t} | " + " | ".join(cells) + f" | {statistics.median(calls[t]):.0f} | {', '.join(map(str, sorted(noop_exit[t])))} |")
    lines += ["", "Ratios (peer / deployer, higher means deployer is faster):", "", "| peer | create | no-op | update | delete | requests |", "| --- | --- | --- | --- | --- | --- |"]
    for t in names[1:]:
        cells = [f"{med[t][p] / med['deployer'][p]:.1f}x" for p in PHASES]
        lines.append(f"| {t} | " + " | ".join(cells) + f" | {statistics.median(calls[t]) / statistics.median(calls['deployer']):.1f}x |")
    goals = [
        "",
        "Goals: create >= 10x faster than `aws cloudformation deploy` and >= 5x faster than `sam deploy`; "
        "no-op under 1 s with exit 0; fewest API requests.",
        "",
        "moto answers CloudFormation instantly, so these numbers measure each tool's own overhead: polling cadence, "
        "waiter delays and request count, not AWS's provisioning time.",
    ]
    if paced:
        goals += paced_report(*paced)
    text = "\n".join(lines + goals) + "\n"
    out = ROOT / "bench/results/peers.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


def paced_report(d, c, u, rounds, measured):
    times, calls, _noop, (asked, polled) = measured
    med = lambda v: statistics.median(v) if v else float("nan")
    # What AWS makes everyone wait for, per phase and tool: D for a stack operation, C for a
    # change set that was needed (an update's review); nothing for a no-op.
    waits = {"create": d, "no-op": 0.0, "update": d + c, "delete": d, "code (hotswap)": u, "code (CloudFormation)": d + c}
    lines = [
        "",
        f"## Paced: CloudFormation's time made real (D = {d:g} s per stack operation, C = {c:g} s per change set, U = {u:g} s per code update)",
        "",
        f"bench/pacer.py between the tools and the same moto: stack operations report IN_PROGRESS for D seconds with their "
        f"resources' events spread over that time (each event carrying the operation's ClientRequestToken, as on AWS), "
        f"change sets stay CREATE_PENDING for C seconds, and UpdateFunctionCode leaves LastUpdateStatus InProgress for U seconds. "
        f"Median of {rounds} rounds, tool order rotating. Overhead = wall time minus what AWS makes everyone wait for: D for a "
        f"create or delete, D + C for an update (its change set is the review), U for a hotswap; a change set on a create or a "
        f"no-op is not needed, so its C counts as overhead. Requests per cycle here are the pacer's count of every request "
        f"the tool sent through it, polls included, so it grows with the time AWS works and each tool's polling pace (the "
        f"last column): it is the count to compare across tools, not the unpaced one above.",
        "",
        "| tool | create wall | create overhead | no-op wall | update wall | update overhead (wall − D − C) | delete wall | delete overhead | requests per cycle | requests per second while AWS works |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in times:
        m = {p: med(v) for p, v in times[t].items()}
        # The seconds AWS was working in this tool's cycle (its own change sets included, needed
        # or not), and the requests the tool made meanwhile.
        waited = 3 * d + (c if t != "deployer" else 0) + c + (c if t != "deployer" else 0)
        per_second = sum(med(polled[t][p]) for p in PHASES) / waited
        lines.append(
            f"| {t} | {m['create']:.1f} s | {m['create'] - d:+.1f} s | {m['no-op']:.1f} s | {m['update']:.1f} s | "
            f"{m['update'] - d - c:+.1f} s | {m['delete']:.1f} s | {m['delete'] - d:+.1f} s | {statistics.median(calls[t]):.0f} | {per_second:.2f} |"
        )
    dep = {p: med(v) for p, v in times["deployer"].items()}
    lines += ["", "Ratios of overhead (peer / deployer; higher means deployer adds less):", "",
              "| peer | create | update | delete |", "| --- | --- | --- | --- |"]
    for t in list(times)[1:]:
        m = {p: med(v) for p, v in times[t].items()}
        ratio = lambda p, w: (m[p] - w) / (dep[p] - w) if dep[p] - w > 0.05 else float("inf")
        lines.append(f"| {t} | {ratio('create', d):.1f}x | {ratio('update', d + c):.1f}x | {ratio('delete', d):.1f}x |")
    hot, full = dep["code (hotswap)"], dep["code (CloudFormation)"]
    req = {p: med(v) for p, v in asked["deployer"].items()}
    lines += [
        "",
        "A code-only change with deployer (same spec, a new build of the function):",
        "",
        "| how | wall | requests |",
        "| --- | --- | --- |",
        f"| `up --hotswap` (UpdateFunctionCode, waits for LastUpdateStatus) | {hot:.1f} s | {req['code (hotswap)']:.0f} |",
        f"| `up --no-hotswap` (a CloudFormation update) | {full:.1f} s | {req['code (CloudFormation)']:.0f} |",
        "",
        f"The hotswap takes {100 * hot / full:.0f} % of the full update's wall time (#13's goal: at most 25 %).",
        "",
        "Requests per phase (median):",
        "",
        "| tool | " + " | ".join(PHASES) + " |",
        "| --- | " + " | ".join("---" for _ in PHASES) + " |",
    ]
    for t in times:
        lines.append(f"| {t} | " + " | ".join(f"{med(asked[t][p]):.0f}" for p in PHASES) + " |")
    lines += [
        "",
        "Goals (#13): deployer's overhead at most 1 s median on create and (wall − D − C) on update, polling at most once a "
        "second on average while it waits. `aws cloudformation deploy`'s waiter polls every 30 s after a 5 s change-set wait.",
    ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
