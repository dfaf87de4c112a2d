//! One load balancer shared by an app's envs ([`crate::render::shared`]): the slot an env takes,
//! recorded in the artifact bucket with conditional writes (`If-None-Match: *`, `If-Match`) so
//! that two `up`s running at once never take the same one; the shared stack made ready (a create
//! that finds another deploy creating it waits for that one); the slot released by `down` and
//! `gc`, and the shared stack deleted with the app's last attached env.
//!
//! Which slot to take and whether a record is stale are pure ([`first_free`], [`is_stale`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::cloud::{Cloud, Condition};
use super::engine::{Engine, Mode, Ui, cloud_failure};
use super::model::{APP_TAG, Stack};
use super::{Bootstrap, describe, ephemeral};
use crate::exit::Error;
use crate::render::{self, shared};
use crate::spec::Spec;

pub use super::model::SHARED_TAG;
/// Where slot records live in the artifact bucket: `shared-alb/<app>/<index>/<slot>.json`.
const PREFIX: &str = "shared-alb";
/// A record whose env stack does not exist is reclaimed only after this long: an `up` takes
/// its slot before it makes the shared load balancer (minutes on AWS) and then its stack.
pub const STALE_AFTER: Duration = Duration::from_secs(3600);
/// Conditional writes lost to other deploys before giving up.
const ATTEMPTS: usize = 8;

/// Slot `slot` of the app's `index`-th shared load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot {
    /// Which shared stack: 1 is `<app>-shared-alb`, 2 `<app>-shared-alb-2`, ...
    pub index: u32,
    /// The slot in it: its priority band and port ([`shared::band`], [`shared::port`]).
    pub slot: u32,
}

impl Slot {
    /// The record's key.
    pub fn key(&self, app: &str) -> String {
        format!("{PREFIX}/{app}/{}/{}.json", self.index, self.slot)
    }

    /// The shared stack's name.
    pub fn shared_stack(&self, app: &str) -> String {
        shared::stack_name(app, self.index)
    }

    /// The env stack's [`SHARED_TAG`] value.
    pub fn tag(&self, app: &str) -> String {
        format!("{}/{}", self.shared_stack(app), self.slot)
    }

    /// The slot a [`SHARED_TAG`] value names.
    pub fn from_tag(app: &str, tag: &str) -> Option<Slot> {
        let (stack, slot) = tag.rsplit_once('/')?;
        Some(Slot {
            index: shared::stack_index(app, stack)?,
            slot: slot.parse().ok()?,
        })
    }

    /// The slot a record key names.
    pub fn from_key(app: &str, key: &str) -> Option<Slot> {
        let rest = key.strip_prefix(&format!("{PREFIX}/{app}/"))?;
        let (index, slot) = rest.strip_suffix(".json")?.split_once('/')?;
        let number = |s: &str| {
            s.parse::<u32>()
                .ok()
                .filter(|_| !s.starts_with('0') || s == "0")
        };
        Some(Slot {
            index: number(index).filter(|i| *i >= 1)?,
            slot: number(slot)?,
        })
    }
}

/// A slot record: whose it is and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// The env stack holding the slot.
    pub stack: String,
    /// When it was taken (RFC 3339).
    pub allocated_at: String,
}

/// The slot to try first: the lowest free one below `capacity` in the lowest shared load
/// balancer; the first of a new one after the last when every one is full.
pub fn first_free(taken: &BTreeSet<Slot>, capacity: u32) -> Slot {
    let last = taken.iter().map(|s| s.index).max().unwrap_or(1);
    for index in 1..=last {
        if let Some(slot) = (0..capacity).find(|&slot| !taken.contains(&Slot { index, slot })) {
            return Slot { index, slot };
        }
    }
    Slot {
        index: last + 1,
        slot: 0,
    }
}

/// Whether a slot record may be taken over: its env stack does not exist, and it was written
/// more than [`STALE_AFTER`] ago (an unreadable time counts as old).
pub fn is_stale(owner_exists: bool, allocated_at: Option<SystemTime>, now: SystemTime) -> bool {
    !owner_exists
        && allocated_at.is_none_or(|t| now.duration_since(t).is_ok_and(|age| age > STALE_AFTER))
}

/// What an attached env gets: its slot, and the shared stack's outputs its template takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Attached {
    /// The slot.
    pub slot: Slot,
    /// Parameter values by name ([`shared::OUTPUTS`]).
    pub parameters: BTreeMap<String, String>,
}

/// Takes (or keeps) the env's slot and makes its shared load balancer ready. `plan` writes
/// nothing: it names the slot `up` would try, and placeholder values when the shared stack
/// does not exist yet.
pub async fn attach<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    cloud: &C,
    spec: &Spec,
    boot: &Bootstrap,
    existing: Option<&Stack>,
    mode: Mode,
    now: SystemTime,
) -> Result<Attached, Error> {
    let slot = match mode {
        Mode::Plan => planned_slot(cloud, spec, &boot.bucket, existing).await?,
        Mode::Apply { .. } => allocate(engine, cloud, spec, &boot.bucket, existing, now).await?,
    };
    let name = slot.shared_stack(&spec.app);
    let place = match shared::preview_host(spec) {
        Some(host) => format!("{host}, rule priorities {:?}", shared::band(slot.slot)),
        None => format!("port {}", shared::port(slot.slot)),
    };
    engine.step(format!(
        "{}: {} slot {} of the shared load balancer {name} ({place})",
        spec.stack_name(),
        if mode == Mode::Plan {
            "would take"
        } else {
            "takes"
        },
        slot.slot
    ));
    let described = describe(cloud, &name).await?;
    let stack = match (mode, described) {
        (Mode::Plan, None) => {
            engine.step(format!(
                "{name} does not exist: `up` creates it first (the load balancer {} shares)",
                spec.stack_name()
            ));
            let parameters = shared::OUTPUTS
                .iter()
                .map(|p| (p.to_string(), format!("(made by {name})")))
                .collect();
            return Ok(Attached { slot, parameters });
        }
        (Mode::Plan, Some(stack)) => stack,
        (Mode::Apply { .. }, described) => {
            let template = shared::template(spec, slot.index);
            let parameters = stack_parameters(spec, boot);
            // Its app, and its own name as what it shares: `ls` lists it, `gc` leaves it to
            // the `down` of its last env.
            let tags = BTreeMap::from([
                (APP_TAG.to_string(), spec.app.clone()),
                (SHARED_TAG.to_string(), name.clone()),
            ]);
            engine
                .put_stack(&name, &template.body(), &parameters, &tags, described)
                .await?
        }
    };
    let parameters = read_outputs(cloud, &stack).await?;
    Ok(Attached { slot, parameters })
}

/// The shared stack's parameters: the bootstrap stack's VPC when it uses that one.
fn stack_parameters(spec: &Spec, boot: &Bootstrap) -> BTreeMap<String, String> {
    match spec.placement() {
        crate::spec::Placement::SharedVpc => BTreeMap::from([
            (render::VPC_PARAMETER.to_string(), boot.vpc_id.clone()),
            (
                render::SUBNETS_PARAMETER.to_string(),
                boot.subnet_ids.join(","),
            ),
        ]),
        _ => BTreeMap::new(),
    }
}

/// The shared stack's outputs an env takes; from its resources when the backend gave none.
async fn read_outputs<C: Cloud>(
    cloud: &C,
    stack: &Stack,
) -> Result<BTreeMap<String, String>, Error> {
    let mut values: BTreeMap<String, String> = shared::OUTPUTS
        .iter()
        .filter_map(|o| Some((o.to_string(), stack.output(o)?.to_string())))
        .collect();
    if values.len() == shared::OUTPUTS.len() {
        return Ok(values);
    }
    let resources = cloud
        .resources(&stack.name)
        .await
        .map_err(|e| cloud_failure(&format!("cannot read the resources of {}", stack.name), e))?;
    let physical = |id: &str| {
        resources
            .iter()
            .find(|r| r.logical_id == id)
            .map(|r| r.physical_id.clone())
    };
    let arn = physical("LoadBalancer")
        .ok_or_else(|| Error::failed(format!("{} has no load balancer", stack.name)))?;
    let listener = physical("HttpsListener").or_else(|| physical("HttpListener"));
    let dns = cloud.load_balancer_dns(&arn).await.ok().flatten();
    // `arn:...:loadbalancer/app/<name>/<id>`: the full name is what follows `loadbalancer/`.
    let full_name = arn.split_once(":loadbalancer/").map(|(_, n)| n.to_string());
    for (key, value) in [
        (shared::LISTENER_ARN, listener),
        (shared::LOAD_BALANCER_DNS_NAME, dns),
        (shared::LOAD_BALANCER_FULL_NAME, full_name),
        (shared::LOAD_BALANCER_ARN, Some(arn)),
    ] {
        if let Some(value) = value {
            values.entry(key.to_string()).or_insert(value);
        }
    }
    Ok(values)
}

/// The slot the env holds (its stack's tag), else the one `up` would try first.
async fn planned_slot<C: Cloud>(
    cloud: &C,
    spec: &Spec,
    bucket: &str,
    existing: Option<&Stack>,
) -> Result<Slot, Error> {
    if let Some(slot) = tagged_slot(spec, existing) {
        return Ok(slot);
    }
    let taken = taken(cloud, spec, bucket).await?;
    Ok(first_free(&taken, shared::capacity(spec)))
}

/// The slot an existing env stack's tag names.
fn tagged_slot(spec: &Spec, existing: Option<&Stack>) -> Option<Slot> {
    let tag = existing?.tags.get(SHARED_TAG)?;
    Slot::from_tag(&spec.app, tag)
}

/// The app's slots that have a record.
async fn taken<C: Cloud>(cloud: &C, spec: &Spec, bucket: &str) -> Result<BTreeSet<Slot>, Error> {
    let prefix = format!("{PREFIX}/{}/", spec.app);
    let keys = cloud
        .list_objects(bucket, &prefix)
        .await
        .map_err(|e| cloud_failure("cannot list the shared load balancer's slots", e))?;
    Ok(keys
        .iter()
        .filter_map(|k| Slot::from_key(&spec.app, k))
        .collect())
}

/// The slot records of the app's `index`-th shared load balancer: the envs that hold one.
pub async fn holders<C: Cloud>(
    cloud: &C,
    bucket: &str,
    app: &str,
    index: u32,
) -> Result<Vec<String>, super::cloud::CloudError> {
    cloud
        .list_objects(bucket, &format!("{PREFIX}/{app}/{index}/"))
        .await
}

/// The env's slot: the one its stack holds when the record still says so, else the first free
/// one taken with `If-None-Match: *` (another deploy that wrote it first makes this one try
/// the next), else a stale one taken over with `If-Match`.
pub async fn allocate<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    cloud: &C,
    spec: &Spec,
    bucket: &str,
    existing: Option<&Stack>,
    now: SystemTime,
) -> Result<Slot, Error> {
    let me = spec.stack_name();
    let record = serde_json::to_vec(&Allocation {
        stack: me.clone(),
        allocated_at: ephemeral::format_time(now),
    })
    .expect("a record always serializes");
    let write = async |slot: Slot, condition: Condition| {
        cloud
            .put_object_if(bucket, &slot.key(&spec.app), record.clone(), &condition)
            .await
            .map_err(|e| cloud_failure("cannot record the shared load balancer's slot", e))
    };
    if let Some(slot) = tagged_slot(spec, existing) {
        match read_allocation(cloud, bucket, &slot.key(&spec.app)).await? {
            Some((owner, _)) if owner.stack == me => return Ok(slot),
            // Its record is gone (released by hand, say): the stack still holds the slot.
            None if write(slot, Condition::Absent).await? => return Ok(slot),
            _ => engine.warn(format!(
                "{me}: slot {} is recorded for another env now: taking a new one",
                slot.tag(&spec.app)
            )),
        }
    }
    let capacity = shared::capacity(spec);
    for _ in 0..ATTEMPTS {
        let taken = taken(cloud, spec, bucket).await?;
        let free = first_free(&taken, capacity);
        let opens_another = taken.iter().all(|s| s.index < free.index);
        if opens_another
            && let Some(slot) =
                reclaim(engine, cloud, spec, bucket, &taken, capacity, now, &record).await?
        {
            return Ok(slot);
        }
        if write(free, Condition::Absent).await? {
            if opens_another && free.index > 1 {
                engine.step(format!(
                    "{me}: every shared load balancer of {} is full ({capacity} envs each): {} takes it to {}",
                    spec.app,
                    me,
                    free.shared_stack(&spec.app)
                ));
            }
            return Ok(free);
        }
    }
    Err(Error::failed(format!(
        "{me}: other deploys took each free slot of the shared load balancer first, {ATTEMPTS} times; try again"
    )))
}

/// Takes over the first stale slot (its env stack gone for over [`STALE_AFTER`]), if any.
#[allow(clippy::too_many_arguments)]
async fn reclaim<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    cloud: &C,
    spec: &Spec,
    bucket: &str,
    taken: &BTreeSet<Slot>,
    capacity: u32,
    now: SystemTime,
    record: &[u8],
) -> Result<Option<Slot>, Error> {
    for slot in taken.iter().filter(|s| s.slot < capacity) {
        let key = slot.key(&spec.app);
        let Some((owner, etag)) = read_allocation(cloud, bucket, &key).await? else {
            continue;
        };
        let exists = describe(cloud, &owner.stack).await?.is_some();
        let at = ephemeral::parse_time(&owner.allocated_at);
        if !is_stale(exists, at, now) {
            continue;
        }
        let taken_over = cloud
            .put_object_if(bucket, &key, record.to_vec(), &Condition::Matches(etag))
            .await
            .map_err(|e| cloud_failure("cannot record the shared load balancer's slot", e))?;
        if taken_over {
            engine.step(format!(
                "{}: took over slot {} of {}, whose env is gone",
                spec.stack_name(),
                slot.tag(&spec.app),
                owner.stack
            ));
            return Ok(Some(*slot));
        }
    }
    Ok(None)
}

/// A slot record and its ETag; `None` when there is none. An unreadable one counts as stale.
async fn read_allocation<C: Cloud>(
    cloud: &C,
    bucket: &str,
    key: &str,
) -> Result<Option<(Allocation, String)>, Error> {
    let object = cloud
        .read_object(bucket, key)
        .await
        .map_err(|e| cloud_failure(&format!("cannot read s3://{bucket}/{key}"), e))?;
    Ok(object.map(|o| {
        let allocation = serde_json::from_slice(&o.body).unwrap_or(Allocation {
            stack: String::new(),
            allocated_at: String::new(),
        });
        (allocation, o.etag)
    }))
}

/// What `down` did to the shared load balancer of an attached env.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    /// The shared stack.
    pub shared_stack: String,
    /// Whether it was deleted: no env holds a slot of it any more.
    pub deleted: bool,
}

/// After an attached env's stack is deleted: frees its slot, and deletes the shared stack when
/// no env holds a slot of it any more.
pub async fn release<C: Cloud, U: Ui>(
    engine: &Engine<'_, C, U>,
    cloud: &C,
    bucket: &str,
    deleted: &Stack,
) -> Result<Option<Released>, Error> {
    let app = deleted.tags.get(APP_TAG);
    let tag = deleted.tags.get(SHARED_TAG);
    let (Some(app), Some(tag)) = (app, tag) else {
        return Ok(None);
    };
    let Some(slot) = Slot::from_tag(app, tag) else {
        return Ok(None);
    };
    let key = slot.key(app);
    let fail =
        |what: &str, e| cloud_failure(&format!("{} is deleted, but {what}", deleted.name), e);
    // Only its own record: a slot taken over meanwhile is another env's now.
    if let Some((owner, _)) = read_allocation(cloud, bucket, &key).await?
        && owner.stack == deleted.name
    {
        cloud
            .delete_object(bucket, &key)
            .await
            .map_err(|e| fail("its shared load balancer slot was not freed", e))?;
    }
    let shared_stack = slot.shared_stack(app);
    let left = holders(cloud, bucket, app, slot.index)
        .await
        .map_err(|e| fail("listing the shared load balancer's slots failed", e))?;
    if !left.is_empty() {
        return Ok(Some(Released {
            shared_stack,
            deleted: false,
        }));
    }
    // Released before (its tag outlived the slot): nothing left to delete.
    let Some(stack) = describe(cloud, &shared_stack).await? else {
        return Ok(None);
    };
    engine.step(format!(
        "{shared_stack}: no env uses it any more: deleting it"
    ));
    engine
        .teardown_from(&shared_stack, Some(stack), false, true, false)
        .await?;
    Ok(Some(Released {
        shared_stack,
        deleted: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(pairs: &[(u32, u32)]) -> BTreeSet<Slot> {
        pairs
            .iter()
            .map(|&(index, slot)| Slot { index, slot })
            .collect()
    }

    #[test]
    fn the_first_free_slot_fills_gaps_then_opens_another_load_balancer() {
        // (taken, capacity) -> (index, slot)
        type Case<'a> = (&'a [(u32, u32)], u32, (u32, u32));
        let cases: [Case; 6] = [
            (&[], 49, (1, 0)),
            (&[(1, 0), (1, 1)], 49, (1, 2)),
            (&[(1, 0), (1, 2)], 49, (1, 1)),
            (&[(1, 0), (1, 1)], 2, (2, 0)),
            (&[(1, 0), (1, 1), (2, 1)], 2, (2, 0)),
            // A slot over this spec's capacity (another branch's smaller spec) is not reused.
            (&[(1, 0), (1, 1), (1, 5)], 2, (2, 0)),
        ];
        for (taken, capacity, (index, slot)) in cases {
            assert_eq!(
                first_free(&slots(taken), capacity),
                Slot { index, slot },
                "{taken:?} capacity {capacity}"
            );
        }
    }

    #[test]
    fn only_an_old_record_of_a_missing_stack_is_stale() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100_000);
        let ago = |s: u64| Some(now - Duration::from_secs(s));
        // (owner exists, written) -> stale
        let cases = [
            (true, ago(10 * 3600), false),
            (false, ago(60), false),
            (false, ago(3601), true),
            (false, None, true),
            (true, None, false),
            // Written "in the future" (clock skew): not stale.
            (false, Some(now + Duration::from_secs(60)), false),
        ];
        for (exists, at, stale) in cases {
            assert_eq!(is_stale(exists, at, now), stale, "{exists} {at:?}");
        }
    }

    #[test]
    fn keys_and_tags_name_the_same_slot() {
        let slot = Slot { index: 2, slot: 7 };
        assert_eq!(slot.key("notes"), "shared-alb/notes/2/7.json");
        assert_eq!(slot.tag("notes"), "notes-shared-alb-2/7");
        assert_eq!(Slot::from_key("notes", &slot.key("notes")), Some(slot));
        assert_eq!(Slot::from_tag("notes", &slot.tag("notes")), Some(slot));
        let first = Slot { index: 1, slot: 0 };
        assert_eq!(Slot::from_tag("notes", "notes-shared-alb/0"), Some(first));
        for key in [
            "shared-alb/notes/0/1.json",
            "shared-alb/notes/1/01.json",
            "shared-alb/notes/1/x.json",
            "shared-alb/notesx/1/1.json",
            "shared-alb/notes/1/1",
        ] {
            assert_eq!(Slot::from_key("notes", key), None, "{key}");
        }
    }
}
