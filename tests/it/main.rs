//! Every integration test in one binary: one link of the AWS SDK instead of thirteen, and one
//! test harness that runs them all in parallel. Each module is one area; `common` holds the
//! emulators and helpers they share.

// Each module uses a part of it.
#[allow(dead_code)]
mod common;

mod bad_specs;
mod cargo_lambda_build;
mod cli;
mod converge_fake;
mod converge_moto;
mod cost_moto;
mod docker_build;
mod domain_moto;
mod drift_moto;
mod ephemeral_moto;
mod faults;
mod fuzz_regressions;
mod house;
mod import;
mod interrupt;
mod local;
mod notes_service;
mod oracles;
mod render;
mod rollout_moto;
mod secrets_moto;
mod shared_alb_moto;
