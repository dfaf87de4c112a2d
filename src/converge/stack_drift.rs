//! Drift: what was changed outside CloudFormation. CloudFormation's detection (DetectStackDrift,
//! then DescribeStackResourceDrifts) compares each resource's properties with the template; it
//! does not read a function's code (`Code` names where the zip came from) nor check properties
//! the template leaves to their defaults. deployer adds the code: a function whose `CodeSha256`
//! is neither its template's artifact nor a hotswap it recorded has drifted.
//!
//! Sorting the detection's results and judging a function's code are pure ([`sort`],
//! [`code_drift`]).

use std::time::Duration;

use super::cloud::Cloud;
use super::engine::{Engine, Ui, cloud_failure};
use super::hotswap;
use super::model::{
    DifferenceType, PropertyDifference, ResourceDrift, Stack, StackDriftDetectionStatus,
    StackResourceDriftStatus,
};
use super::watch::Poll;
use crate::exit::Error;
use crate::render;
use crate::spec::Spec;

/// What a detection found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Resources changed (`MODIFIED`, with their differences) or deleted (`DELETED`) outside
    /// CloudFormation, and functions running code nobody deployed.
    pub drifted: Vec<ResourceDrift>,
    /// Resources the detection could not check (`NOT_CHECKED`, `UNKNOWN`).
    pub not_checked: Vec<ResourceDrift>,
    /// Why the detection failed, when it did: the results cover only what it checked.
    pub failed: Option<String>,
}

impl Report {
    /// Whether anything drifted.
    pub fn is_drifted(&self) -> bool {
        !self.drifted.is_empty()
    }

    /// Every resource worth a line: the drifted ones, then those not checked.
    pub fn shown(&self) -> Vec<ResourceDrift> {
        self.drifted
            .iter()
            .chain(&self.not_checked)
            .cloned()
            .collect()
    }
}

/// The detection's results as drifted and not checked (in-sync resources dropped), each in the
/// order CloudFormation listed them.
pub fn sort(resources: Vec<ResourceDrift>) -> (Vec<ResourceDrift>, Vec<ResourceDrift>) {
    let mut drifted = Vec::new();
    let mut not_checked = Vec::new();
    for r in resources {
        match r.status {
            StackResourceDriftStatus::Modified | StackResourceDriftStatus::Deleted => {
                drifted.push(r)
            }
            StackResourceDriftStatus::InSync => {}
            _ => not_checked.push(r),
        }
    }
    (drifted, not_checked)
}

/// A function's code drift: its live SHA-256 (base64, as Lambda reports it) against the
/// template's artifact and a recorded hotswap (hex). `None`: it runs one of them.
pub fn code_drift(
    logical_id: &str,
    live_base64: &str,
    template_hex: &str,
    hotswapped_hex: Option<&str>,
) -> Option<ResourceDrift> {
    let live = aws_smithy_types::base64::decode(live_base64)
        .map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .unwrap_or_else(|_| live_base64.to_string());
    if live == template_hex || hotswapped_hex == Some(live.as_str()) {
        return None;
    }
    let expected = match hotswapped_hex {
        Some(hotswapped) => format!("{template_hex} (or the hotswapped {hotswapped})"),
        None => template_hex.to_string(),
    };
    Some(ResourceDrift {
        logical_id: logical_id.to_string(),
        resource_type: "AWS::Lambda::Function".into(),
        status: StackResourceDriftStatus::Modified,
        differences: vec![PropertyDifference {
            path: "/Code (SHA-256 of the zip)".into(),
            expected,
            actual: live,
            kind: DifferenceType::NotEqual,
        }],
    })
}

/// Runs a drift detection of `stack` and waits for it (polled like a change set, Ctrl-C
/// stopping the wait), then reads each resource's drift and each function's code.
pub async fn detect<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    cloud: &C,
    spec: &Spec,
    stack: &Stack,
    hotswapped: &hotswap::Drift,
) -> Result<Report, Error> {
    let name = &stack.name;
    engine.step(format!(
        "{name}: detecting drift (CloudFormation compares each resource with the template)"
    ));
    let id = cloud
        .detect_stack_drift(name)
        .await
        .map_err(|e| cloud_failure(&format!("cannot detect the drift of {name}"), e))?;
    let poll = engine.poll_schedule();
    let poll = Poll {
        first: poll.first.min(Duration::from_millis(500)),
        ..poll
    };
    let mut delay = poll.first;
    let detection = loop {
        let detection = cloud
            .drift_detection(&id)
            .await
            .map_err(|e| cloud_failure("cannot read the drift detection", e))?;
        if detection.status != StackDriftDetectionStatus::DetectionInProgress {
            break detection;
        }
        if engine.wait_or_interrupt(delay, 0).await {
            return Err(Error::new(
                crate::exit::Code::Interrupted,
                format!("interrupted: the drift detection of {name} was not waited for"),
            ));
        }
        delay = poll.next(delay);
    };
    let resources = cloud
        .resource_drifts(name)
        .await
        .map_err(|e| cloud_failure(&format!("cannot read the drift of {name}"), e))?;
    let (mut drifted, not_checked) = sort(resources);
    drifted.extend(code_drifts(cloud, spec, stack, hotswapped).await?);
    let failed = match detection.status {
        StackDriftDetectionStatus::DetectionFailed => Some(
            detection
                .reason
                .unwrap_or_else(|| "CloudFormation gave no reason".into()),
        ),
        _ => None,
    };
    Ok(Report {
        drifted,
        not_checked,
        failed,
    })
}

/// The functions of the stack whose live code is neither their template's nor hotswapped.
async fn code_drifts<C: Cloud>(
    cloud: &C,
    spec: &Spec,
    stack: &Stack,
    hotswapped: &hotswap::Drift,
) -> Result<Vec<ResourceDrift>, Error> {
    let resources = cloud
        .resources(&stack.name)
        .await
        .map_err(|e| cloud_failure(&format!("cannot list the resources of {}", stack.name), e))?;
    let mut drifted = Vec::new();
    for code in render::code_parameters(spec) {
        let logical_id = render::function_id(&code.function);
        let (Some(resource), Some(key)) = (
            resources.iter().find(|r| r.logical_id == logical_id),
            stack.parameters.get(&code.key),
        ) else {
            continue;
        };
        // Keys are `<app>/<function>/<sha256 hex>.zip`.
        let Some(template_hex) = key.rsplit('/').next().and_then(|f| f.strip_suffix(".zip")) else {
            continue;
        };
        let live = cloud
            .function_code(&resource.physical_id)
            .await
            .map_err(|e| cloud_failure(&format!("cannot read the code of {logical_id}"), e))?;
        let hotswapped = hotswapped
            .functions
            .get(&code.function)
            .map(|c| c.sha256.as_str());
        drifted.extend(code_drift(
            &logical_id,
            &live.sha256,
            template_hex,
            hotswapped,
        ));
    }
    Ok(drifted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(id: &str, status: StackResourceDriftStatus) -> ResourceDrift {
        ResourceDrift {
            logical_id: id.into(),
            resource_type: "AWS::X::Y".into(),
            status,
            differences: Vec::new(),
        }
    }

    #[test]
    fn results_sort_into_drifted_and_not_checked() {
        use StackResourceDriftStatus as S;
        let (drifted, not_checked) = sort(vec![
            resource("A", S::InSync),
            resource("B", S::Modified),
            resource("C", S::NotChecked),
            resource("D", S::Deleted),
            resource("E", S::UnknownValue),
        ]);
        let ids = |v: &[ResourceDrift]| v.iter().map(|r| r.logical_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&drifted), ["B", "D"]);
        assert_eq!(ids(&not_checked), ["C", "E"]);
    }

    #[test]
    fn code_drifts_only_when_it_is_neither_the_template_nor_a_hotswap() {
        let hex = |byte: u8| format!("{byte:02x}").repeat(32);
        let b64 = |byte: u8| aws_smithy_types::base64::encode([byte; 32]);
        // (live, template, hotswapped) -> drifted
        let cases = [
            (1, 1, None, false),
            (2, 1, Some(2), false),
            (3, 1, None, true),
            (3, 1, Some(2), true),
        ];
        for (live, template, hotswapped, drifted) in cases {
            let hotswapped = hotswapped.map(hex);
            let found = code_drift(
                "ApiFunction",
                &b64(live),
                &hex(template),
                hotswapped.as_deref(),
            );
            assert_eq!(found.is_some(), drifted, "{live} {template} {hotswapped:?}");
        }
        let found = code_drift("ApiFunction", &b64(3), &hex(1), None).unwrap();
        assert_eq!(found.differences[0].actual, hex(3));
        assert_eq!(found.differences[0].expected, hex(1));
    }
}
