//! `deployer up` of the example service: the real `notes-api` binary deployed to moto, and the
//! service's own tests (examples/notes/tests/service.rs) run against the table deployer made.

use crate::common;

use common::moto::Moto;

#[tokio::test(flavor = "multi_thread")]
async fn deployer_up_deploys_the_example_service_and_its_table_fits_the_code() {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    // The real service, built for this machine by the cargo test run (NOTES_API_BIN), so the
    // test deploys it as x86_64; the arm64 build is tested in cargo_lambda_build.rs.
    let notes = common::root().join("examples/notes");
    let zip = deployer::build::zip_bootstrap(&std::fs::read(notes_api(&notes)).unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api.zip"), &zip).unwrap();
    std::fs::create_dir(dir.path().join("stacks")).unwrap();
    let spec = std::fs::read_to_string(common::root().join("stacks/example.yaml")).unwrap();
    assert!(spec.contains("architecture: arm64"));
    std::fs::write(
        dir.path().join("stacks/example.yaml"),
        spec.replace("architecture: arm64", "architecture: x86_64"),
    )
    .unwrap();

    let moto = Moto::start();
    let artifact = format!("api={}", dir.path().join("api.zip").display());
    let up = moto.deployer(
        dir.path(),
        &["up", "--artifact", &artifact, "--yes", "--json"],
    );
    up.expect_code(0);
    let summary = common::summary(&up.stdout);
    let table = summary["outputs"]["NotesTableName"]
        .as_str()
        .unwrap()
        .to_string();

    let lambda = aws_sdk_lambda::Client::new(&moto.sdk_config().await);
    let function = lambda
        .get_function()
        .function_name("notes-dev-api")
        .send()
        .await
        .unwrap();
    let config = function.configuration().unwrap();
    assert_eq!(
        config.code_sha256(),
        Some(
            base64::engine::general_purpose::STANDARD
                .encode(Sha256::digest(&zip))
                .as_str()
        )
    );
    assert_eq!(
        config.runtime().map(|r| r.as_str()),
        Some("provided.al2023")
    );
    assert_eq!(config.handler(), Some("bootstrap"));
    let env = config.environment().and_then(|e| e.variables()).unwrap();
    assert_eq!(env.get("TABLE_NOTES"), Some(&table));

    // The service's own code works against the table deployer created from the spec.
    let service = service_test(&notes)
        .args(["--exact", "works_against_the_table_named_in_notes_table"])
        .env("NOTES_TABLE", &table)
        .env("NOTES_DYNAMODB_ENDPOINT", &moto.endpoint)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&service.stdout);
    assert!(
        service.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&service.stderr)
    );
    assert!(stdout.contains("1 passed"), "the test ran: {stdout}");
}

/// The example's `notes-api` binary: the one `scripts/test` built (`NOTES_API_BIN`, in
/// deployer's target directory, sharing its dependencies), else built now in the example's own
/// target directory (cargo holds deployer's while its tests run).
pub(crate) fn notes_api(notes: &std::path::Path) -> std::path::PathBuf {
    if let Some(bin) = std::env::var_os("NOTES_API_BIN") {
        return bin.into();
    }
    let build = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--bin", "notes-api", "--manifest-path"])
        .arg(notes.join("Cargo.toml"))
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .unwrap();
    assert!(build.success());
    notes.join("target/debug/notes-api")
}

/// The example's `tests/service.rs` as a command taking test-harness arguments: the executable
/// `scripts/test` built (`NOTES_SERVICE_TEST`), else `cargo test` in the example.
fn service_test(notes: &std::path::Path) -> std::process::Command {
    if let Some(exe) = std::env::var_os("NOTES_SERVICE_TEST") {
        let mut command = std::process::Command::new(exe);
        command.current_dir(notes);
        return command;
    }
    let mut command = std::process::Command::new(env!("CARGO"));
    command
        .args(["test", "--quiet", "--manifest-path"])
        .arg(notes.join("Cargo.toml"))
        .args(["--test", "service", "--"])
        .env_remove("CARGO_TARGET_DIR");
    command
}
