//! Ctrl-C: SIGINT sent to the real binary mid-deploy, with a proxy in front of moto that keeps
//! the operation running until deployer reacts.

use crate::common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::moto::Moto;
use common::proxy::{Proxy, Rules};

fn project() -> tempfile::TempDir {
    common::project_with(&[("api.zip", "interrupted")])
}

fn spawn_up(moto: &Moto, proxy: &Proxy, dir: &std::path::Path) -> Child {
    let artifact = format!("api={}", dir.join("api.zip").display());
    moto.command(assert_cmd::cargo::cargo_bin("deployer"))
        .current_dir(dir)
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .args(["up", "--artifact", &artifact, "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for(what: &str, proxy: &Proxy, done: impl Fn(&Proxy) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(proxy) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            proxy.actions()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sigint(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn finish(child: Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Two DescribeStacks after the action at `start`: the operation is visibly running.
fn polled_after(actions: &[String], start: Option<usize>) -> bool {
    start.is_some_and(|i| {
        actions[i..]
            .iter()
            .filter(|a| *a == "DescribeStacks")
            .count()
            >= 2
    })
}

/// Polls after the execution started.
fn running(p: &Proxy) -> bool {
    let actions = p.actions();
    polled_after(
        &actions,
        actions.iter().position(|a| a == "ExecuteChangeSet"),
    )
}

/// Polls after the app stack's CreateStack (the bootstrap stack's comes first).
fn creating(p: &Proxy) -> bool {
    let actions = p.actions();
    let created = actions
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == "CreateStack")
        .nth(1)
        .map(|(i, _)| i);
    polled_after(&actions, created)
}

fn change_memory(dir: &std::path::Path) {
    let path = dir.join("stacks/example.yaml");
    let spec = std::fs::read_to_string(&path)
        .unwrap()
        .replacen("memory: 256", "memory: 512", 1);
    std::fs::write(path, spec).unwrap();
}

#[test]
fn first_ctrl_c_cancels_an_update_and_shows_the_rollback() {
    let moto = Moto::start();
    let dir = project();
    let artifact = format!("api={}", dir.path().join("api.zip").display());
    moto.deployer(dir.path(), &["up", "--artifact", &artifact, "--yes"])
        .expect_code(0);
    change_memory(dir.path());
    let rules = Rules {
        hold_stack: Some("notes-dev".into()),
        cancel_completes: true,
        ..Rules::default()
    };
    let proxy = Proxy::start(&moto.endpoint, rules);
    let child = spawn_up(&moto, &proxy, dir.path());
    wait_for("the update to run", &proxy, running);
    sigint(&child);
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert_eq!(proxy.count("CancelUpdateStack"), 1, "{:?}", proxy.actions());
    assert!(
        stderr.contains("Ctrl-C: cancelling the update of notes-dev"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: interrupted: the update was cancelled and rolled back; notes-dev is now UPDATE_ROLLBACK_COMPLETE"),
        "{stderr}"
    );
}

#[test]
fn second_ctrl_c_stops_watching_and_says_how_to_resume() {
    let moto = Moto::start();
    let dir = project();
    let artifact = format!("api={}", dir.path().join("api.zip").display());
    moto.deployer(dir.path(), &["up", "--artifact", &artifact, "--yes"])
        .expect_code(0);
    change_memory(dir.path());
    // The rollback never ends: only a second Ctrl-C gets the terminal back.
    let rules = Rules {
        hold_stack: Some("notes-dev".into()),
        ..Rules::default()
    };
    let proxy = Proxy::start(&moto.endpoint, rules);
    let child = spawn_up(&moto, &proxy, dir.path());
    wait_for("the update to run", &proxy, running);
    sigint(&child);
    wait_for("the cancel", &proxy, |p| p.count("CancelUpdateStack") == 1);
    sigint(&child);
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains(
            "Resume watching with: deployer status --watch -s stacks/example.yaml --env dev"
        ),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_during_a_create_deletes_the_new_stack() {
    let moto = Moto::start();
    let dir = project();
    let rules = Rules {
        hold_stack: Some("notes-dev".into()),
        ..Rules::default()
    };
    let proxy = Proxy::start(&moto.endpoint, rules);
    let child = spawn_up(&moto, &proxy, dir.path());
    wait_for("the creation to run", &proxy, creating);
    sigint(&child);
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("Ctrl-C: deleting notes-dev, which was being created"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: interrupted: the creation was undone; notes-dev is deleted"),
        "{stderr}"
    );
    assert_eq!(proxy.count("CancelUpdateStack"), 0);
    let deletes = proxy
        .actions()
        .iter()
        .filter(|a| *a == "DeleteStack")
        .count();
    assert_eq!(deletes, 1, "{:?}", proxy.actions());
}

#[test]
fn ctrl_c_before_execution_only_deletes_the_change_set() {
    let moto = Moto::start();
    let dir = project();
    let artifact = format!("api={}", dir.path().join("api.zip").display());
    moto.deployer(dir.path(), &["up", "--artifact", &artifact, "--yes"])
        .expect_code(0);
    change_memory(dir.path());
    let rules = Rules {
        hold_change_sets: true,
        ..Rules::default()
    };
    let proxy = Proxy::start(&moto.endpoint, rules);
    let child = spawn_up(&moto, &proxy, dir.path());
    wait_for("the change set to be pending", &proxy, |p| {
        p.count("DescribeChangeSet") >= 2
    });
    sigint(&child);
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted before notes-dev changed: the change set was deleted"),
        "{stderr}"
    );
    assert_eq!(proxy.count("ExecuteChangeSet"), 0);
    assert_eq!(proxy.count("DeleteChangeSet"), 1, "{:?}", proxy.actions());
}

/// A `docker` that answers like an engine and whose builds run until they are stopped; it
/// leaves `<itself>.building` once a build has started.
fn docker_that_builds_forever(dir: &std::path::Path) -> std::path::PathBuf {
    let script = dir.join("docker");
    std::fs::write(
        &script,
        "#!/bin/sh\ncase \"$1\" in\n  version) echo linux/amd64 ;;\n  \
         build) touch \"$0.building\"; exec sleep 120 ;;\n  *) exit 1 ;;\nesac\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

#[test]
fn ctrl_c_during_the_build_stops_the_build_and_deploys_nothing() {
    use std::os::unix::process::CommandExt as _;
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    common::hello_crate(dir.path());
    std::fs::write(
        dir.path().join("stack.yaml"),
        "app: hello\nfunctions:\n  api:\n    path: hello\n    architecture: x86_64\n",
    )
    .unwrap();
    // The bootstrap stack first, so that the interrupt can only meet the build.
    moto.deployer(dir.path(), &["bootstrap"]).expect_code(0);
    moto.reset_recording();
    let docker = docker_that_builds_forever(dir.path());
    // Its own process group, which Ctrl-C in a terminal signals as a whole, and SIGINT handled
    // as in a terminal (the test may run under `nohup`, which ignores it for every child).
    let mut command = moto.command(assert_cmd::cargo::cargo_bin("deployer"));
    command
        .current_dir(dir.path())
        .env("DEPLOYER_DOCKER", &docker)
        .env_remove("DOCKER_BUILDKIT")
        .args(["up", "-s", "stack.yaml", "--yes"])
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: only an async-signal-safe call between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let child = command.spawn().unwrap();
    let building = docker.with_extension("building");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !building.exists() {
        assert!(Instant::now() < deadline, "the build never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("was stopped before the build finished"),
        "{stderr}"
    );
    for action in ["CreateStack", "CreateChangeSet", "ExecuteChangeSet"] {
        assert_eq!(moto.count(action), 0, "{action}: {}", moto.log());
    }
    assert!(
        !moto.requests().iter().any(|r| r.method == "PUT"),
        "nothing uploaded: {}",
        moto.log()
    );
}
