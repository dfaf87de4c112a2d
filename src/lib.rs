//! deployer: a YAML stack spec in, a converged CloudFormation stack out.
//!
//! The pipeline reads top to bottom:
//! [`spec`] parses and validates → [`render`] turns the spec into CloudFormation (pure and
//! deterministic) → [`build`] produces function artifacts → [`aws`] holds the clients →
//! [`converge`] is the stack state machine → [`verify`] asks the deployed service →
//! [`ui`] reports. [`cli`] parses arguments and
//! [`commands`] runs one verb, [`import`] runs `table import`; [`workspace`] finds and reads the spec; [`init`] scaffolds a new service; [`exit`] holds
//! exit codes.

#![warn(missing_docs)]

pub mod aws;
pub mod build;
pub mod cli;
pub mod commands;
pub mod converge;
pub mod cost;
pub mod exit;
pub mod ui;
pub mod verify;
pub mod workspace;

/// CloudFormation rendering (the `deployer-render` crate).
pub use deployer_render as render;
/// The stack spec: parse, validate, schema (the `deployer-spec` crate).
pub use deployer_spec as spec;
