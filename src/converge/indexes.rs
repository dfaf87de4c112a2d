//! Waiting for DynamoDB between index updates. CloudFormation starts an index's creation and
//! ends the update without waiting for it to backfill, and DynamoDB refuses to update the table
//! again until the table and every index are ACTIVE ("AWS::DynamoDB::Table",
//! `GlobalSecondaryIndexes`): so before each update of a multi-step transition (and before the
//! first, where an earlier run left an index CREATING or DELETING), `up` waits with
//! DescribeTable. TTL cannot be enabled while a disable is still under way (`DISABLING`, about
//! an hour): that is read with DescribeTimeToLive before anything is sent.
//!
//! What a table waits for is pure ([`TableState::busy`]); this module makes the calls.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use super::cloud::Cloud;
use super::engine::{Engine, Progress, Ui, cloud_failure};
use super::model::{Stack, TableBusy, TableState, TimeToLiveStatus};
use crate::exit::{Code, Error};

/// The longest pause between two DescribeTable calls: a backfill takes minutes to hours.
const MAX_DELAY: Duration = Duration::from_secs(5);

impl<C: Cloud, U: Ui> Engine<'_, C, U> {
    /// The physical names of the stack's resources `logical_ids` (those it has).
    pub(super) async fn physical_names(
        &self,
        stack_name: &str,
        logical_ids: &[String],
    ) -> Result<BTreeMap<String, String>, Error> {
        if logical_ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let resources =
            self.cloud().resources(stack_name).await.map_err(|e| {
                cloud_failure(&format!("cannot list the resources of {stack_name}"), e)
            })?;
        Ok(resources
            .into_iter()
            .filter(|r| logical_ids.contains(&r.logical_id) && !r.physical_id.is_empty())
            .map(|r| (r.logical_id, r.physical_id))
            .collect())
    }

    /// Waits until every table of `tables` (logical id to physical name) and all its indexes
    /// are ACTIVE, reporting what it waits for. A Ctrl-C stops the wait (nothing more is sent).
    pub(super) async fn wait_for_indexes(
        &self,
        stack_name: &str,
        tables: &BTreeMap<String, String>,
        remaining: usize,
    ) -> Result<(), Error> {
        let started = Instant::now();
        let handled = self.interrupt_count();
        for (logical_id, physical) in tables {
            let mut delay = self.poll_schedule().first;
            loop {
                let state: TableState = self.cloud().table_state(physical).await.map_err(|e| {
                    cloud_failure(
                        &format!("cannot describe table {physical} (DescribeTable)"),
                        e,
                    )
                })?;
                let Some(busy) = state.busy() else {
                    break;
                };
                let what = match &busy {
                    TableBusy::Index { name, .. } => format!("index {name} of {logical_id}"),
                    TableBusy::Table(_) => format!("table {logical_id}"),
                };
                self.report(Progress::TableBusy {
                    stack: stack_name.to_string(),
                    table: logical_id.clone(),
                    busy,
                    elapsed: started.elapsed(),
                });
                if self.wait_or_interrupt(delay, handled).await {
                    return Err(Error::new(
                        Code::Interrupted,
                        format!(
                            "interrupted while waiting for {what} to become ACTIVE: nothing more was sent ({remaining} update{} of {stack_name} still to do). `deployer up` goes on from here",
                            if remaining == 1 { "" } else { "s" }
                        ),
                    ));
                }
                delay = (delay * 8 / 5).min(MAX_DELAY);
            }
        }
        Ok(())
    }

    /// Refuses to enable TTL on a table whose TTL is still being disabled: DynamoDB answers a
    /// ValidationException then, minutes into the update.
    pub(super) async fn check_ttl_enabling(
        &self,
        stack: &Stack,
        tables: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        for (logical_id, physical) in tables {
            let status = self.cloud().time_to_live(physical).await.map_err(|e| {
                cloud_failure(
                    &format!("cannot read the TTL of table {physical} (DescribeTimeToLive)"),
                    e,
                )
            })?;
            if status == Some(TimeToLiveStatus::Disabling) {
                return Err(Error::usage(ttl_disabling_message(
                    logical_id,
                    stack.updated,
                )));
            }
        }
        Ok(())
    }
}

/// Why TTL cannot be enabled yet, and when to retry: about an hour after the update that
/// disabled it (the stack's last update, when known).
pub fn ttl_disabling_message(logical_id: &str, last_update: Option<SystemTime>) -> String {
    let when = match last_update {
        Some(t) => {
            let retry = humantime::format_rfc3339_seconds(t + Duration::from_secs(3600));
            format!("retry after about {retry} (an hour after the stack's last update)")
        }
        None => "retry in about an hour".to_string(),
    };
    format!(
        "table {logical_id}: TTL is still being disabled (DescribeTimeToLive: DISABLING), and DynamoDB cannot enable it again until that is done, which takes up to an hour: nothing was sent; {when}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::converge::model::{IndexState, IndexStatus, TableStatus};

    fn index(name: &str, status: IndexStatus, items: Option<i64>) -> IndexState {
        IndexState {
            name: name.into(),
            status: Some(status),
            backfilling: false,
            item_count: items,
        }
    }

    #[test]
    fn a_table_is_busy_until_it_and_every_index_are_active() {
        let table =
            |status: TableStatus, items: Option<i64>, indexes: Vec<IndexState>| TableState {
                status: Some(status),
                item_count: items,
                indexes,
            };
        let cases = [
            (table(TableStatus::Active, Some(10), vec![]), None),
            (
                table(TableStatus::Updating, Some(10), vec![]),
                Some(TableBusy::Table(TableStatus::Updating)),
            ),
            (
                table(
                    TableStatus::Active,
                    Some(200),
                    vec![
                        index("a", IndexStatus::Active, Some(200)),
                        index("b", IndexStatus::Creating, Some(82)),
                    ],
                ),
                Some(TableBusy::Index {
                    name: "b".into(),
                    status: IndexStatus::Creating,
                    percent: Some(41),
                }),
            ),
            // No counts (an empty table, or not yet reported): no percentage.
            (
                table(
                    TableStatus::Active,
                    Some(0),
                    vec![index("b", IndexStatus::Creating, Some(0))],
                ),
                Some(TableBusy::Index {
                    name: "b".into(),
                    status: IndexStatus::Creating,
                    percent: None,
                }),
            ),
            (
                table(
                    TableStatus::Active,
                    None,
                    vec![index("old", IndexStatus::Deleting, None)],
                ),
                Some(TableBusy::Index {
                    name: "old".into(),
                    status: IndexStatus::Deleting,
                    percent: None,
                }),
            ),
            // Counts are refreshed every six hours: never over 100 %.
            (
                table(
                    TableStatus::Active,
                    Some(10),
                    vec![index("b", IndexStatus::Creating, Some(30))],
                ),
                Some(TableBusy::Index {
                    name: "b".into(),
                    status: IndexStatus::Creating,
                    percent: Some(100),
                }),
            ),
        ];
        for (state, want) in cases {
            assert_eq!(state.busy(), want, "{state:?}");
        }
    }

    #[test]
    fn the_ttl_refusal_says_when_to_retry() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_400_000);
        let message = ttl_disabling_message("NotesTable", Some(t));
        assert!(
            message.contains("retry after about 2026-12-04T17:00:00Z"),
            "{message}"
        );
        assert!(ttl_disabling_message("T", None).contains("retry in about an hour"));
    }
}
