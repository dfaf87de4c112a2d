"""Time from `deployer up --env pr-N --ttl 2h` to an env that answers, four ways, against moto
paced by bench/pacer.py's per-resource model:

- own ALB, standard: the env creates its own load balancer; CloudFormation waits for it.
- own ALB, express: the operation ends once configured; the env answers once the load balancer
  has provisioned (the model's standard time for it, which express mode does not shorten).
- shared ALB, standard / express: the app's shared load balancer exists (made by a first env,
  untimed), so the env adds only its listener, rules, target group, functions and tables.

"Answers" is modelled: moto's load balancers do not serve traffic, so `up` runs with
--no-verify and the env counts as answering at max(`up` exits, the pacer's `ready_at` of the
load balancer it routes through). Also: the monthly fixed cost of 10 such envs from the
load balancer's hourly price.
"""

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pacer as pacing  # noqa: E402
from peers import commit, free_port, moto_env, placeholder_zip, start_moto, version  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEPLOYER = Path(os.environ.get("DEPLOYER_BIN", ROOT / "target/release/deployer"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
# Elastic Load Balancing pricing, US East (N. Virginia): per Application Load Balancer-hour.
# LCU-hours ($0.008 each) follow traffic, not the number of envs: left out of the fixed cost.
ALB_HOURLY_USD = 0.0225
HOURS_PER_MONTH = 730
ENVS = 10
VARIANTS = [
    ("own ALB, standard", "none", "--no-express"),
    ("own ALB, express", "none", "--express"),
    ("shared ALB, standard", "ephemeral", "--no-express"),
    ("shared ALB, express", "ephemeral", "--express"),
]


def main():
    measured = commit()  # before the run: the binary is built from it
    model = dict(pacing.MODEL)
    model.update({k: tuple(v) for k, v in json.loads(os.environ.get("PACE_MODEL", "{}")).items()})
    work = Path(tempfile.mkdtemp(prefix="deployer-ephemeral-"))
    port = free_port()
    env = moto_env(port)
    moto = start_moto(port, work, env)
    c, u = (float(os.environ.get(k, v)) for k, v in (("PACE_C", "3"), ("PACE_U", "3")))
    pacer = None
    try:
        project = groundwork(work, env)
        pacer = pacing.Pacer(port, 0.0, c, u, model=model)
        paced = {**env, "AWS_ENDPOINT_URL": f"http://localhost:{pacer.port}"}
        results, first = measure(project, paced, pacer)
        report(model, c, results, first, measured)
    finally:
        if pacer:
            pacer.close()
        moto.terminate()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)


def groundwork(work, env):
    """The project (one spec per `alb.share`), a prebuilt artifact, the bootstrap stack (unpaced)."""
    project = work / "project"
    (project / "stacks").mkdir(parents=True)
    spec = (ROOT / "stacks/example.yaml").read_text()
    for share in ("none", "ephemeral"):
        text = spec.replace("  idle_timeout: 60\n", f"  idle_timeout: 60\n  share: {share}\n")
        (project / f"stacks/{share}.yaml").write_text(text)
    placeholder_zip(project / "api.zip")
    out = subprocess.run([str(DEPLOYER), "bootstrap", "--json"], env=env, cwd=project, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"deployer bootstrap failed: {out.stderr}")
    return project


def up(project, env, share, mode, name):
    cmd = [str(DEPLOYER), "up", "-q", "-s", f"stacks/{share}.yaml", "--env", name, "--ttl", "2h",
           "--artifact", f"api={project / 'api.zip'}", "--no-verify", "--yes", mode]
    start = time.time()
    out = subprocess.run(cmd, env=env, cwd=project, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return start, time.time()


def measure(project, env, pacer):
    """Per variant, per round: (seconds until `up` exits, seconds until the env answers)."""
    # The shared load balancer, made by a first env (standard mode, as `up` makes it).
    start, end = up(project, env, "ephemeral", "--no-express", "first")
    first = (end - start, max(end, pacer.ready_at("notes-shared-alb") or end) - start)
    results = {v[0]: [] for v in VARIANTS}
    for r in range(ROUNDS):
        order = VARIANTS[r % len(VARIANTS):] + VARIANTS[: r % len(VARIANTS)]
        for label, share, mode in order:
            name = f"pr-{r}{VARIANTS.index((label, share, mode))}"
            start, end = up(project, env, share, mode, name)
            lb_stack = f"notes-{name}" if share == "none" else "notes-shared-alb"
            ready = pacer.ready_at(lb_stack) or end
            results[label].append((end - start, max(end, ready) - start))
            print(f"round {r + 1}: {label}: up {end - start:.1f} s, answers at {max(end, ready) - start:.1f} s", file=sys.stderr)
    return results, first


def report(model, c, results, first, measured):
    base = statistics.median(a for _, a in results[VARIANTS[0][0]])
    alb_month = ALB_HOURLY_USD * HOURS_PER_MONTH
    lines = [
        "# Preview envs: own load balancer or shared, standard or express mode",
        "",
        f"`bench/ephemeral`, {ROUNDS} round(s), medians. Time from `deployer up --env pr-N --ttl 2h` "
        "(a prebuilt artifact, `--no-verify`) to an env that answers, against moto paced by "
        "bench/pacer.py's per-resource model (below). An env answers once `up` has exited and the "
        "load balancer it routes through has provisioned; express mode ends the operation before "
        "that, so for an env with its own load balancer it does not bring the answer sooner.",
        "",
        f"| variant | `up` exits (s) | answers (s) | answers, vs own ALB standard | fixed cost of {ENVS} envs (USD/month) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, share, _ in VARIANTS:
        exits = statistics.median(e for e, _ in results[label])
        answers = statistics.median(a for _, a in results[label])
        albs = ENVS if share == "none" else 1
        lines.append(f"| {label} | {exits:.1f} | {answers:.1f} | {answers / base:.0%} | {albs * alb_month:.2f} ({albs} ALB) |")
    lines += [
        "",
        f"The shared variants are an app's second env onwards: the first env's `up` (which creates "
        f"`notes-shared-alb` in standard mode) exited after {first[0]:.1f} s and answered at {first[1]:.1f} s. "
        f"Goal (issue #25): shared + express at most 25 % of own ALB standard.",
        "",
        f"Cost: ${ALB_HOURLY_USD} per Application Load Balancer-hour (Elastic Load Balancing pricing, US East "
        f"(N. Virginia)) × {HOURS_PER_MONTH} hours = ${alb_month:.2f} a month per load balancer, used or not. "
        f"{ENVS} envs of the example spec (3 rules, 1 target group each) fit on one shared load balancer "
        "(33 per load balancer: its 100 rules). LCU-hours ($0.008) follow traffic and are left out; "
        "a shared load balancer evaluates more rules per request, which counts toward LCUs beyond the "
        "first 10 rules only under load.",
        "",
        "## The pacer's model",
        "",
        "Inputs, not measurements: this machine has no AWS. Each resource takes its type's time once "
        "what it references (Ref, GetAtt, Sub, DependsOn) is done, as CloudFormation orders resources "
        "in both modes (CloudFormation User Guide, \"Deploy stacks faster with express mode\": express "
        "respects dependencies, runs the rest in parallel, and ends a resource once its configuration "
        "is applied). An operation is its critical path plus the stack's own start and end "
        f"({pacing.STACK_OVERHEAD[0]:.0f} s standard, {pacing.STACK_OVERHEAD[1]:.0f} s express); a change set takes {c:.0f} s "
        "to compute. Standard times are what CloudFormation waits for: the load balancer's provisioning "
        "(Elastic Load Balancing User Guide: a new load balancer is `provisioning` before `active`; "
        "minutes, reported up to 30), a role's propagation through IAM, a function's `Active` state, "
        "a table's `ACTIVE`, a record's `INSYNC`. Express times are the API calls alone. Override "
        "entries with PACE_MODEL='{\"AWS::IAM::Role\": [20, 3]}'.",
        "",
        "| resource type | standard (s) | express (s) |",
        "|---|---:|---:|",
    ]
    for kind, (standard, express) in sorted(model.items()):
        lines.append(f"| `{kind}` | {standard:.0f} | {express:.0f} |")
    lines.append(f"| any other | {pacing.DEFAULT_RESOURCE[0]:.0f} | {pacing.DEFAULT_RESOURCE[1]:.0f} |")
    lines += [
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}. "
        f"Versions: {version([str(DEPLOYER), '--version'])}; "
        f"moto {version([str(ROOT / '.venv/bin/python'), '-c', 'import moto; print(moto.__version__)'])}. "
        f"deployer at commit {measured}.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    (ROOT / "bench/results/ephemeral.md").write_text(text)


if __name__ == "__main__":
    main()
