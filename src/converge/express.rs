//! CloudFormation's express mode: an operation ends once every resource's configuration is
//! applied, without waiting for it to stabilize (a load balancer's provisioning, a function's
//! readiness), and rollback is off unless asked for (CloudFormation User Guide, "Deploy stacks
//! faster with express mode"; API Reference, "DeploymentConfig"). For the envs one iterates on:
//! ephemeral envs use it by default; a protected env only when its spec says so.
//!
//! Whether an operation runs in express mode is pure ([`wanted`], [`needs_standard`]).

use super::model::{Change, ChangeAction, Replacement};

/// Whether `up` runs in express mode: `--express`/`--no-express` (`flag`), else the spec's
/// `deploy.express`, else on for an ephemeral env. A protected env is never express unless its
/// spec says so: `--express` alone is refused there.
pub fn wanted(
    flag: Option<bool>,
    spec: Option<bool>,
    ephemeral: bool,
    protected: bool,
) -> Result<bool, String> {
    match (flag, spec) {
        (Some(true), spec) if protected && spec != Some(true) => Err(
            "--express is refused for a protected env (`protected_envs`): its operations wait for every resource and roll back on failure; set `deploy: { express: true }` in the spec to change that".into(),
        ),
        (Some(flag), _) => Ok(flag),
        (None, Some(spec)) => Ok(spec),
        (None, None) => Ok(ephemeral && !protected),
    }
}

/// The resources a change set replaces: an update that replaces a resource does not run while
/// rollback is off, so such a change set is made again in standard mode.
pub fn needs_standard(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .filter(|c| {
            c.action == ChangeAction::Modify
                && matches!(
                    c.replacement,
                    Some(Replacement::True | Replacement::Conditional)
                )
        })
        .map(|c| c.logical_id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_then_spec_then_ephemeral_and_never_protected_unless_the_spec_says() {
        // (flag, spec, ephemeral, protected) -> express, or refused
        let cases: [(_, Result<bool, ()>); 11] = [
            ((None, None, false, false), Ok(false)),
            ((None, None, true, false), Ok(true)),
            ((Some(false), None, true, false), Ok(false)),
            ((Some(true), None, false, false), Ok(true)),
            ((None, Some(true), false, false), Ok(true)),
            ((None, Some(false), true, false), Ok(false)),
            ((Some(true), Some(false), false, false), Ok(true)),
            ((None, None, false, true), Ok(false)),
            ((None, Some(true), false, true), Ok(true)),
            ((Some(false), Some(true), false, true), Ok(false)),
            ((Some(true), Some(true), false, true), Ok(true)),
        ];
        for ((flag, spec, ephemeral, protected), want) in cases {
            assert_eq!(
                wanted(flag, spec, ephemeral, protected).ok(),
                want.ok(),
                "{flag:?} {spec:?} ephemeral={ephemeral} protected={protected}"
            );
        }
        let refused = wanted(Some(true), None, false, true).unwrap_err();
        assert!(refused.contains("protected env"), "{refused}");
        assert!(wanted(Some(true), Some(false), false, true).is_err());
    }

    #[test]
    fn only_replacements_need_standard_mode() {
        let change = |action: &str, id: &str, replacement: Option<&str>| Change {
            action: action.into(),
            logical_id: id.into(),
            resource_type: "AWS::X::Y".into(),
            replacement: replacement.map(Replacement::from),
        };
        let changes = [
            change("Modify", "A", Some("False")),
            change("Modify", "B", Some("True")),
            change("Modify", "C", Some("Conditional")),
            change("Add", "D", None),
            change("Remove", "E", None),
        ];
        assert_eq!(needs_standard(&changes), ["B", "C"]);
        assert!(needs_standard(&changes[..1]).is_empty());
    }
}
