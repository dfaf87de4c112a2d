"""`plan` of an unchanged stack with drift detection (the default) and with `--no-drift`,
alternating, ROUNDS=5 each, through bench/pacer.py: a change set takes PACE_C (3) seconds to
compute and a drift detection PACE_DRIFT (10) seconds, after which the pacer reports every
resource IN_SYNC. The goal (issue #27): with detection, `plan` takes at most one detection
round-trip longer (PACE_DRIFT plus the poll that sees it end).
"""

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
ROUNDS = int(os.environ.get("ROUNDS", "5"))
# The longest wait between two polls of a detection (src/converge/watch.rs, `Poll::max`).
POLL_MAX_S = 1.2


def main():
    measured = commit()
    work = Path(tempfile.mkdtemp(prefix="deployer-drift-"))
    port = free_port()
    env = moto_env(port)
    moto = start_moto(port, work, env)
    c, drift = (float(os.environ.get(k, v)) for k, v in (("PACE_C", "3"), ("PACE_DRIFT", "10")))
    pacer = None
    try:
        project = work / "project"
        (project / "stacks").mkdir(parents=True)
        shutil.copy(ROOT / "stacks/example.yaml", project / "stacks/example.yaml")
        placeholder_zip(project / "api.zip")
        art = f"api={project / 'api.zip'}"
        out = subprocess.run([str(DEPLOYER), "up", "--artifact", art, "--yes", "--no-verify"], env=env, cwd=project, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"deployer up failed: {out.stderr}")
        pacer = pacing.Pacer(port, 20.0, c, 3.0, drift=drift)
        paced = {**env, "AWS_ENDPOINT_URL": f"http://localhost:{pacer.port}"}
        times = {"plan": [], "plan --no-drift": []}
        asked = {"plan": [], "plan --no-drift": []}
        for r in range(ROUNDS):
            order = list(times) if r % 2 == 0 else list(reversed(times))
            for label in order:
                cmd = [str(DEPLOYER), "plan", "-q", "--artifact", art, "--skip-permission-check"]
                if label.endswith("--no-drift"):
                    cmd.append("--no-drift")
                before = pacer.count()
                start = time.perf_counter()
                out = subprocess.run(cmd, env=paced, cwd=project, capture_output=True, text=True)
                times[label].append(time.perf_counter() - start)
                asked[label].append(pacer.count() - before)
                if out.returncode != 0:
                    sys.exit(f"{' '.join(cmd)} exited {out.returncode}: {out.stderr}")
        report(times, asked, c, drift, measured)
    finally:
        if pacer:
            pacer.close()
        moto.terminate()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)


def report(times, asked, c, drift, measured):
    med = {k: statistics.median(v) for k, v in times.items()}
    extra = med["plan"] - med["plan --no-drift"]
    lines = [
        "# `plan` with drift detection",
        "",
        f"`bench/drift`, {ROUNDS} rounds alternating, medians; `plan` of an unchanged example stack through "
        f"bench/pacer.py: a change set takes {c:.0f} s to compute, a drift detection {drift:.0f} s "
        "(`DETECTION_IN_PROGRESS` until then, then every resource `IN_SYNC`; moto has no drift detection, "
        "the pacer answers the three calls as the CloudFormation API Reference documents them).",
        "",
        "| command | wall (s) | requests |",
        "|---|---:|---:|",
    ]
    for label in times:
        lines.append(f"| `deployer {label}` | {med[label]:.2f} | {statistics.median(asked[label]):.0f} |")
    lines += [
        "",
        f"Detection adds {extra:.2f} s: the detection's {drift:.0f} s and {extra - drift:.2f} s more. Goal: at most one "
        f"detection round-trip, i.e. the detection plus the poll that sees it end (at most {POLL_MAX_S} s apart): "
        f"{'met' if extra <= drift + POLL_MAX_S else 'not met'}.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}. "
        f"Versions: {version([str(DEPLOYER), '--version'])}; "
        f"moto {version([str(ROOT / '.venv/bin/python'), '-c', 'import moto; print(moto.__version__)'])}. "
        f"deployer at commit {measured}.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    (ROOT / "bench/results/drift.md").write_text(text)


if __name__ == "__main__":
    main()
