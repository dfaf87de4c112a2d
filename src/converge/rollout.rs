//! Gradual rollouts (`functions.<fn>.rollout`). The template forwards every request to the
//! `live` alias's target group and none to `next`'s (render::rollout); after a stack update
//! that published a new version, `up` moves the weights of the function's rules step by step,
//! watching alarms, then points `live` at the new version with a parameter-only update and puts
//! the weights back. An alarm in `ALARM` moves everything back to `live` at once.
//!
//! Why deployer moves the weights rather than CodeDeploy: see the README's "Gradual rollouts".

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cloud::Cloud;
use super::engine::{Engine, cloud_failure};
use super::model::{
    AlarmState, AlarmStatus, Confirmation, Forwarder, Progress, ShiftPhase, ShiftState, Ui,
};
use crate::exit::Error;
use crate::render::rollout::RolloutIds;
use crate::spec::{Rollout, Spec, Strategy};

/// One step: the share of requests on the new version, held this long while alarms are watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Percent of requests on the new version.
    pub percent: u32,
    /// How long it is held.
    pub hold: Duration,
}

/// The steps of a rollout: `canary` (its share, then all), `linear` (its share more at each
/// step, then all), `all_at_once` (all, held for the wait).
pub fn steps(rollout: &Rollout) -> Vec<Step> {
    let all = |hold| Step { percent: 100, hold };
    match rollout.strategy {
        Strategy::AllAtOnce => vec![all(rollout.wait)],
        Strategy::Canary => vec![
            Step {
                percent: rollout.percent,
                hold: rollout.wait,
            },
            all(Duration::ZERO),
        ],
        Strategy::Linear => {
            let mut steps: Vec<Step> = (1..)
                .map(|k| k * rollout.percent)
                .take_while(|p| *p < 100)
                .map(|percent| Step {
                    percent,
                    hold: rollout.wait,
                })
                .collect();
            steps.push(all(Duration::ZERO));
            steps
        }
    }
}

/// A function whose stack publishes a version its `live` alias does not serve yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The function's name in the spec.
    pub function: String,
    /// The version `live` serves.
    pub from: String,
    /// The version `next` serves.
    pub to: String,
}

/// The functions with a rollout whose stack outputs say `live` and `next` differ.
pub fn pending(spec: &Spec, outputs: &[(String, String)]) -> Vec<Pending> {
    let output = |key: &str| {
        outputs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    spec.functions
        .iter()
        .filter(|(_, f)| f.rollout.is_some())
        .filter_map(|(name, _)| {
            let ids = RolloutIds::of(name);
            let from = output(&ids.live_version_output)?;
            let to = output(&ids.next_version_output)?;
            (from != to).then(|| Pending {
                function: name.clone(),
                from,
                to,
            })
        })
        .collect()
}

/// What `up` would do after the changes `plan` shows: for each function with a rollout whose
/// version they publish (add or replace), how its traffic would move.
pub fn planned(spec: &Spec, changes: &[super::model::Change]) -> Vec<String> {
    spec.functions
        .iter()
        .filter_map(|(name, f)| Some((name, f.rollout.as_ref()?)))
        .filter(|(name, _)| {
            let version = RolloutIds::of(name).version;
            changes.iter().any(|c| c.logical_id == version)
        })
        .map(|(name, rollout)| {
            let moves: Vec<String> = steps(rollout)
                .iter()
                .map(|s| match s.hold.as_secs() {
                    0 => format!("{} %", s.percent),
                    held => format!("{} % for {}", s.percent, humantime::format_duration(Duration::from_secs(held))),
                })
                .collect();
            format!(
                "`{name}` publishes a version; `up` then moves its requests to it ({}: {}), back at once if an alarm fires",
                rollout.strategy.as_str(),
                moves.join(", ")
            )
        })
        .collect()
}

/// Where the template forwards function `name`'s requests: the logical ids of the rules
/// (`true`) and listeners (`false`) whose forward action names its `live` target group.
pub fn forwarders(template: &Value, name: &str) -> Vec<(String, bool)> {
    let live = serde_json::json!({ "Ref": RolloutIds::of(name).live_target_group });
    let forwards_to_live = |actions: &Value| {
        actions.as_array().into_iter().flatten().any(|a| {
            a["ForwardConfig"]["TargetGroups"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|g| g["TargetGroupArn"] == live)
        })
    };
    let resources = template["Resources"].as_object().into_iter().flatten();
    resources
        .filter_map(|(id, r)| {
            let props = &r["Properties"];
            match r["Type"].as_str()? {
                "AWS::ElasticLoadBalancingV2::ListenerRule"
                    if forwards_to_live(&props["Actions"]) =>
                {
                    Some((id.clone(), true))
                }
                "AWS::ElasticLoadBalancingV2::Listener"
                    if forwards_to_live(&props["DefaultActions"]) =>
                {
                    Some((id.clone(), false))
                }
                _ => None,
            }
        })
        .collect()
}

/// The first alarm in `ALARM`.
pub fn fired(states: &[AlarmState]) -> Option<&AlarmState> {
    states.iter().find(|s| s.status == AlarmStatus::Alarm)
}

/// The error a rollback ends `up` with: the alarm that fired (exit 1), or the person's choice
/// at Ctrl-C (exit 130).
pub fn rolled_back_error(shift: &Shift, alarm: Option<&AlarmState>) -> Error {
    let back = format!(
        "{}: rolled `{}` back to version {}: every request goes to it again, and version {} serves none",
        shift.stack, shift.function, shift.from, shift.to
    );
    match alarm {
        Some(alarm) => Error::failed(format!(
            "{back}. Alarm `{}` is {}: {}\nFix the cause and run `deployer up` again: it shifts to the newest version anew",
            alarm.name,
            alarm.status.as_str(),
            alarm.reason
        )),
        None => Error::new(
            crate::exit::Code::Interrupted,
            format!("interrupted: {back}. `deployer up` shifts to it anew"),
        ),
    }
}

/// One function's shift, with the physical names it acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    /// The stack.
    pub stack: String,
    /// The function's name in the spec.
    pub function: String,
    /// The version serving now (`live`).
    pub from: String,
    /// The new version (`next`).
    pub to: String,
    /// The steps.
    pub steps: Vec<Step>,
    /// The target groups of `live` and `next`, by ARN.
    pub groups: (String, String),
    /// What forwards the function's requests.
    pub forwarders: Vec<Forwarder>,
    /// The alarms watched, by name: the new version's own, then the spec's.
    pub alarms: Vec<String>,
}

impl Shift {
    /// The shift of `pending`, from the template and the stack's resources (logical id →
    /// physical id); `None` when the stack lacks one of them (a rollout added by this update
    /// to a stack that failed, say).
    pub fn of(
        stack: &str,
        pending: &Pending,
        rollout: &Rollout,
        template: &Value,
        physical: &BTreeMap<String, String>,
    ) -> Option<Shift> {
        let ids = RolloutIds::of(&pending.function);
        let id = |logical: &str| physical.get(logical).cloned();
        let forwarders = forwarders(template, &pending.function)
            .into_iter()
            .map(|(logical, rule)| {
                let arn = id(&logical)?;
                Some(match rule {
                    true => Forwarder::Rule(arn),
                    false => Forwarder::Listener(arn),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let mut alarms = vec![id(&ids.next_errors_alarm)?, id(&ids.next_5xx_alarm)?];
        alarms.extend(rollout.alarms.iter().cloned());
        Some(Shift {
            stack: stack.to_string(),
            function: pending.function.clone(),
            from: pending.from.clone(),
            to: pending.to.clone(),
            steps: steps(rollout),
            groups: (id(&ids.live_target_group)?, id(&ids.next_target_group)?),
            forwarders,
            alarms,
        })
    }

    /// The weights that put `percent` of requests on the new version.
    fn weights(&self, percent: u32) -> [(String, u32); 2] {
        [
            (self.groups.0.clone(), 100 - percent),
            (self.groups.1.clone(), percent),
        ]
    }
}

/// How a shift ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Every request goes to the new version.
    Finished,
    /// Every request went back: an alarm fired (`Some`), or the person chose it at Ctrl-C.
    RolledBack(Option<AlarmState>),
}

impl<C: Cloud, U: Ui> Engine<'_, C, U> {
    /// Moves `shift`'s traffic step by step, watching its alarms; an alarm in `ALARM` moves it
    /// all back. The first Ctrl-C asks whether to roll back or to finish at once.
    pub async fn shift(&self, shift: &Shift) -> Result<Ended, Error> {
        self.check_alarms_before_moving(shift).await?;
        let total: Duration = shift.steps.iter().map(|s| s.hold).sum();
        let started = Instant::now();
        let handled = self.interrupt_count();
        let alarm_poll = self.poll_schedule().steady * 4;
        'steps: for step in &shift.steps {
            self.weigh(shift, step.percent).await?;
            let until = Instant::now() + step.hold;
            let left = || total.saturating_sub(started.elapsed());
            // The last move of a canary or linear shift is its end, reported as such below.
            if step.percent < 100 || !step.hold.is_zero() {
                self.report_shift(shift, step.percent, left(), ShiftPhase::Moved, None);
            }
            while !step.hold.is_zero() {
                let states = self
                    .cloud()
                    .alarm_states(&shift.alarms)
                    .await
                    .map_err(|e| cloud_failure("cannot read the rollout's alarms", e))?;
                if let Some(alarm) = fired(&states) {
                    return self
                        .roll_back(shift, step.percent, Some(alarm.clone()))
                        .await;
                }
                let now = Instant::now();
                if now >= until {
                    break;
                }
                self.report_shift(shift, step.percent, left(), ShiftPhase::Holding, None);
                if self
                    .wait_or_interrupt(alarm_poll.min(until - now), handled)
                    .await
                {
                    let question = format!(
                        "{}: {} % on version {}. Roll back to version {}? (no: finish now, every request to version {})",
                        shift.function, step.percent, shift.to, shift.from, shift.to
                    );
                    let answer = self.ask(&question);
                    self.answered_interrupts();
                    if answer == Confirmation::No {
                        self.weigh(shift, 100).await?;
                        break 'steps;
                    }
                    return self.roll_back(shift, step.percent, None).await;
                }
            }
            if step.percent == 100 {
                break;
            }
        }
        self.report_shift(shift, 100, Duration::ZERO, ShiftPhase::Finished, None);
        Ok(Ended::Finished)
    }

    /// Before any traffic moves: a named alarm that does not exist would never fire (exit 2),
    /// and one already in `ALARM` (the last rollback's, say, not yet back to `OK`) would roll
    /// the first step back at once, after sending it requests for nothing (exit 1).
    async fn check_alarms_before_moving(&self, shift: &Shift) -> Result<(), Error> {
        let states = self
            .cloud()
            .alarm_states(&shift.alarms)
            .await
            .map_err(|e| cloud_failure("cannot read the rollout's alarms", e))?;
        let missing: Vec<&str> = shift
            .alarms
            .iter()
            .filter(|name| !states.iter().any(|s| s.name == **name))
            .map(String::as_str)
            .collect();
        let nothing_moved = format!(
            "no traffic was moved (version {} still serves every request)",
            shift.from
        );
        if !missing.is_empty() {
            return Err(Error::usage(format!(
                "{}: the rollout of `{}` watches alarms that do not exist: {}; {nothing_moved}",
                shift.stack,
                shift.function,
                missing.join(", "),
            )));
        }
        match fired(&states) {
            None => Ok(()),
            Some(alarm) => Err(Error::failed(format!(
                "{}: alarm `{}` is already {} ({}), so the rollout of `{}` to version {} did not start: {nothing_moved}. `deployer up` again once it is OK",
                shift.stack,
                alarm.name,
                alarm.status.as_str(),
                alarm.reason,
                shift.function,
                shift.to
            ))),
        }
    }

    /// Every request back on the old version.
    async fn roll_back(
        &self,
        shift: &Shift,
        percent: u32,
        alarm: Option<AlarmState>,
    ) -> Result<Ended, Error> {
        self.weigh(shift, 0).await.map_err(|e| {
            Error::failed(format!(
                "{}: {} % of `{}`'s requests still go to version {} and could not be moved back: {e}; `deployer up` again moves them",
                shift.stack, percent, shift.function, shift.to
            ))
        })?;
        self.report_shift(
            shift,
            0,
            Duration::ZERO,
            ShiftPhase::RolledBack,
            alarm.clone(),
        );
        Ok(Ended::RolledBack(alarm))
    }

    /// Every request to `live` again: after `live` took the new version, the template's weights.
    pub async fn forward_to_live(&self, shift: &Shift) -> Result<(), Error> {
        self.weigh(shift, 0).await
    }

    /// Sets the weights on every forwarder of the function.
    async fn weigh(&self, shift: &Shift, percent: u32) -> Result<(), Error> {
        let weights = shift.weights(percent);
        for forwarder in &shift.forwarders {
            self.cloud()
                .forward(forwarder, &weights)
                .await
                .map_err(|e| cloud_failure("cannot move the rollout's traffic", e))?;
        }
        Ok(())
    }

    fn report_shift(
        &self,
        shift: &Shift,
        percent: u32,
        left: Duration,
        phase: ShiftPhase,
        alarm: Option<AlarmState>,
    ) {
        self.report(Progress::Shift(ShiftState {
            stack: shift.stack.clone(),
            function: shift.function.clone(),
            from: shift.from.clone(),
            to: shift.to.clone(),
            percent,
            left,
            phase,
            alarm,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(strategy: Strategy, percent: u32, wait: u64) -> Rollout {
        Rollout {
            pos: crate::spec::Pos { line: 1, col: 1 },
            strategy,
            percent,
            wait: Duration::from_secs(wait),
            alarms: Vec::new(),
        }
    }

    #[test]
    fn the_steps_of_each_strategy() {
        let s = |p, h| Step {
            percent: p,
            hold: Duration::from_secs(h),
        };
        for (r, expected) in [
            (
                rollout(Strategy::Canary, 10, 300),
                vec![s(10, 300), s(100, 0)],
            ),
            (
                rollout(Strategy::Linear, 30, 60),
                vec![s(30, 60), s(60, 60), s(90, 60), s(100, 0)],
            ),
            (
                rollout(Strategy::Linear, 50, 60),
                vec![s(50, 60), s(100, 0)],
            ),
            (rollout(Strategy::AllAtOnce, 10, 120), vec![s(100, 120)]),
            (rollout(Strategy::AllAtOnce, 10, 0), vec![s(100, 0)]),
        ] {
            assert_eq!(steps(&r), expected, "{r:?}");
        }
    }

    #[test]
    fn a_shift_is_pending_where_live_and_next_differ() {
        let spec = crate::spec::parse(
            "app: notes\nalb: {}\nfunctions:\n  api:\n    path: svc\n    default_route: true\n    rollout: { strategy: canary }\n  web:\n    path: svc\n    routes: [{ path: /web* }]\n    rollout: { strategy: linear }\n  plain:\n    path: svc\n    routes: [{ path: /p* }]\n",
            "s.yaml",
        )
        .unwrap();
        let o = |k: &str, v: &str| (k.to_string(), v.to_string());
        let outputs = [
            o("ApiLiveVersion", "3"),
            o("ApiNextVersion", "4"),
            o("WebLiveVersion", "7"),
            o("WebNextVersion", "7"),
        ];
        assert_eq!(
            pending(&spec, &outputs),
            [Pending {
                function: "api".into(),
                from: "3".into(),
                to: "4".into()
            }]
        );
        // A stack without the outputs yet (the update that adds the rollout failed): nothing.
        assert!(pending(&spec, &[]).is_empty());
    }

    #[test]
    fn the_rules_and_listeners_of_a_function_are_its_forwarders() {
        let spec = crate::spec::parse(
            "app: notes\nalb: {}\nfunctions:\n  api:\n    path: svc\n    default_route: true\n    routes: [{ path: /a* }, { path: /b* }]\n    rollout: { strategy: canary }\n  web:\n    path: svc\n    routes: [{ path: /web* }]\n",
            "s.yaml",
        )
        .unwrap();
        let template = crate::render::app(&spec, crate::render::Options::default()).unwrap();
        let mut found = forwarders(&template.0, "api");
        found.sort();
        assert_eq!(
            found,
            [
                ("ApiRoute1".to_string(), true),
                ("ApiRoute2".to_string(), true),
                ("HttpListener".to_string(), false),
            ]
        );
        assert!(forwarders(&template.0, "web").is_empty());
    }

    #[test]
    fn a_new_version_passes_the_update_rules_and_loses_no_data() {
        use super::super::model::{Change, ChangeAction, Replacement};
        let render = |memory: u32| {
            let spec = crate::spec::parse(
                &format!("app: notes\nalb: {{}}\nfunctions:\n  api:\n    path: svc\n    memory: {memory}\n    default_route: true\n    routes: [{{ path: /a* }}]\n    rollout: {{ strategy: canary }}\n"),
                "s.yaml",
            )
            .unwrap();
            crate::render::app(&spec, crate::render::Options::default())
                .unwrap()
                .0
        };
        let (old, new) = (render(256), render(512));
        let description =
            |t: &Value| t["Resources"]["ApiVersion"]["Properties"]["Description"].clone();
        assert_ne!(
            description(&old),
            description(&new),
            "a configuration change publishes a version"
        );
        let transition = super::super::transition::plan(Some(&old), &new, false).unwrap();
        assert_eq!(transition.steps.len(), 1, "one update");
        let replaced = Change {
            action: ChangeAction::Modify,
            logical_id: "ApiVersion".into(),
            resource_type: "AWS::Lambda::Version".into(),
            replacement: Some(Replacement::True),
        };
        assert!(super::super::data_loss::losses(&[replaced], &old, &new).is_empty());
        assert_eq!(old["Resources"]["ApiVersion"]["DeletionPolicy"], "Retain");
    }

    #[test]
    fn plan_says_how_a_new_version_would_take_traffic() {
        use super::super::model::{Change, ChangeAction, Replacement};
        let spec = crate::spec::parse(
            "app: notes\nalb: {}\nfunctions:\n  api:\n    path: svc\n    default_route: true\n    rollout: { strategy: linear, percent: 40, wait: 2m }\n  web:\n    path: svc\n    routes: [{ path: /w* }]\n    rollout: { strategy: canary }\n",
            "s.yaml",
        )
        .unwrap();
        let change = |id: &str| Change {
            action: ChangeAction::Modify,
            logical_id: id.into(),
            resource_type: "AWS::Lambda::Version".into(),
            replacement: Some(Replacement::True),
        };
        assert_eq!(
            planned(&spec, &[change("ApiVersion"), change("WebFunction")]),
            [
                "`api` publishes a version; `up` then moves its requests to it (linear: 40 % for 2m, 80 % for 2m, 100 %), back at once if an alarm fires"
            ]
        );
        assert!(planned(&spec, &[change("ApiLiveAlias")]).is_empty());
    }

    #[test]
    fn only_an_alarm_in_alarm_fires() {
        let a = |name: &str, status| AlarmState {
            name: name.into(),
            status,
            reason: String::new(),
        };
        let states = [
            a("x", AlarmStatus::Ok),
            a("y", AlarmStatus::InsufficientData),
        ];
        assert_eq!(fired(&states), None);
        let states = [a("x", AlarmStatus::Ok), a("z", AlarmStatus::Alarm)];
        assert_eq!(fired(&states).map(|s| s.name.as_str()), Some("z"));
    }
}
