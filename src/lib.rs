//! deployer: a YAML stack spec in, a converged CloudFormation stack out.
//!
//! The pipeline reads top to bottom: [`spec`] parses and validates, [`render`] turns the spec into
//! CloudFormation (pure and deterministic). [`workspace`] finds and reads the spec file, [`cli`]
//! parses arguments and dispatches, [`exit`] holds the exit codes.

pub mod cli;
pub mod exit;
pub mod render;
pub mod spec;
pub mod workspace;
