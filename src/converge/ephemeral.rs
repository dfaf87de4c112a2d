//! Ephemeral environments: expiry tags, what `gc` may delete, env names from git branches, and
//! which artifacts a torn-down env leaves unreferenced. All pure.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::decide::is_in_progress;
use super::model::{APP_TAG, ENV_TAG, SHARED_TAG, Stack, StackStatus};
pub use super::model::{EPHEMERAL_TAG, EXPIRES_TAG, TTL_TAG, VOLATILE_TAGS};

/// Parses a duration such as `48h`, `30m`, `7d`, `1d 12h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration such as 48h or 7d: {e}"))?;
    if d < Duration::from_secs(60) {
        return Err(format!("`{text}` is shorter than a minute"));
    }
    Ok(d)
}

/// RFC 3339 (UTC, whole seconds).
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Parses RFC 3339; `None` when the text is not a time.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}

/// The ephemeral tags of a stack deployed at `now` with `ttl`.
pub fn tags(now: SystemTime, ttl: Duration) -> BTreeMap<String, String> {
    BTreeMap::from([
        (EPHEMERAL_TAG.to_string(), "true".to_string()),
        (EXPIRES_TAG.to_string(), format_time(now + ttl)),
        (
            TTL_TAG.to_string(),
            humantime::format_duration(ttl).to_string(),
        ),
    ])
}

/// Whether a stack is tagged ephemeral by deployer.
pub fn is_ephemeral(stack: &Stack) -> bool {
    stack.tags.get(EPHEMERAL_TAG).is_some_and(|v| v == "true") && stack.tags.contains_key(APP_TAG)
}

/// The TTL an ephemeral stack was deployed with.
pub fn stored_ttl(stack: &Stack) -> Option<Duration> {
    stack
        .tags
        .get(TTL_TAG)
        .and_then(|t| humantime::parse_duration(t).ok())
}

/// Whether a no-op `up` should still push the expiry out: when less than 90 % of the TTL is
/// left (or the expiry is missing), so that repeated runs minutes apart stay no-ops.
pub fn needs_extension(stack: &Stack, now: SystemTime, ttl: Duration) -> bool {
    match stack.tags.get(EXPIRES_TAG).and_then(|t| parse_time(t)) {
        Some(expires) => expires < now + ttl.mul_f64(0.9),
        None => true,
    }
}

/// What `gc` does with one stack, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Delete it.
    Delete(String),
    /// Leave it alone.
    Skip(String),
}

/// Decides for one stack. Only stacks tagged `deployer:ephemeral=true` by deployer are ever
/// deleted; among those, only expired ones (or older than `older_than`), never one that is
/// termination-protected or has an operation running.
pub fn gc_verdict(stack: &Stack, now: SystemTime, older_than: Option<Duration>) -> Verdict {
    if !stack.tags.contains_key(APP_TAG) {
        return Verdict::Skip("not managed by deployer".into());
    }
    if !stack.tags.contains_key(ENV_TAG) && stack.tags.contains_key(SHARED_TAG) {
        return Verdict::Skip("the app's shared load balancer: deleted with its last env".into());
    }
    if !is_ephemeral(stack) {
        return Verdict::Skip("not ephemeral".into());
    }
    if stack.termination_protection {
        return Verdict::Skip("termination protection is on".into());
    }
    if is_in_progress(&stack.status) {
        return Verdict::Skip(format!("{} is running", stack.status.as_str()));
    }
    if let Some(age) = older_than {
        let last = stack.updated.or(stack.created);
        return match last {
            Some(t) if t + age <= now => {
                Verdict::Delete(format!("last deployed {} ago", ago(now, t)))
            }
            Some(t) => Verdict::Skip(format!("last deployed {} ago", ago(now, t))),
            None => Verdict::Skip("no creation time".into()),
        };
    }
    match stack.tags.get(EXPIRES_TAG).map(|t| (t, parse_time(t))) {
        Some((text, Some(expires))) if expires <= now => {
            Verdict::Delete(format!("expired at {text}"))
        }
        Some((text, Some(_))) => Verdict::Skip(format!("expires at {text}")),
        Some((text, None)) => Verdict::Skip(format!("unreadable expiry `{text}`")),
        None => Verdict::Skip("no expiry tag".into()),
    }
}

fn ago(now: SystemTime, then: SystemTime) -> String {
    let secs = now.duration_since(then).unwrap_or_default().as_secs();
    humantime::format_duration(Duration::from_secs(secs - secs % 60)).to_string()
}

/// An env name from a git branch: lowercase letters, digits and single dashes, starting with a
/// letter, at most `max_len` characters; a truncated name ends in 6 hex digits of the branch's
/// hash so two long branches with the same prefix still get different envs.
pub fn env_from_branch(branch: &str, max_len: usize) -> String {
    let mut slug = String::new();
    for c in branch.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let mut slug = slug.trim_matches('-').to_string();
    if !slug.starts_with(|c: char| c.is_ascii_lowercase()) {
        slug.insert_str(0, "b-");
    }
    let slug = slug.trim_end_matches('-').to_string();
    let max_len = max_len.max(8);
    if slug.len() <= max_len {
        return slug;
    }
    let hash = crate::build::hex(&Sha256::digest(branch.as_bytes()));
    let keep = slug[..max_len - 7].trim_end_matches('-');
    format!("{keep}-{}", &hash[..6])
}

/// The branch CI or git says this checkout is on.
pub fn branch_from_environment(git_branch: impl FnOnce() -> Option<String>) -> Option<String> {
    // Pull requests: GitHub sets GITHUB_HEAD_REF; GitLab CI_COMMIT_REF_NAME; others fall back to git.
    [
        "GITHUB_HEAD_REF",
        "CI_COMMIT_REF_NAME",
        "BUILDKITE_BRANCH",
        "GITHUB_REF_NAME",
    ]
    .iter()
    .filter_map(|v| std::env::var(v).ok())
    .find(|b| !b.is_empty())
    .or_else(git_branch)
    .filter(|b| b != "HEAD")
}

/// Keys of artifacts `stack` references (its `*CodeKey` parameters) that no stack in `others`
/// references: safe to delete with `stack`.
pub fn unreferenced_artifacts(stack: &Stack, others: &[Stack]) -> Vec<String> {
    let code_keys = |s: &Stack| -> BTreeSet<String> {
        s.parameters
            .iter()
            .filter(|(k, _)| k.ends_with("CodeKey"))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let still_used: BTreeSet<String> = others
        .iter()
        .filter(|o| o.id != stack.id)
        .flat_map(code_keys)
        .collect();
    code_keys(stack).difference(&still_used).cloned().collect()
}

/// Decides whether the env is ephemeral: `--ttl`, or an existing ephemeral stack (whose expiry a
/// later `up` extends by its stored TTL). Refuses to turn a live persistent env ephemeral: that
/// would switch its tables to `DeletionPolicy: Delete`.
pub fn lifetime(
    spec: &crate::spec::Spec,
    ttl: Option<Duration>,
    existing: Option<&Stack>,
    now: SystemTime,
) -> Result<super::Lifetime, crate::exit::Error> {
    let name = spec.stack_name();
    let existing_ephemeral = existing.filter(|s| is_ephemeral(s));
    if let (Some(_), Some(stack), None) = (ttl, existing, existing_ephemeral)
        && super::decide::decide(Some(&stack.status)) == super::decide::Action::Update
    {
        return Err(crate::exit::Error::usage(format!(
            "{name} exists as a persistent env; making it ephemeral would delete its tables with it. \
             Drop --ttl, or delete it first with `deployer down`"
        )));
    }
    let ttl = ttl.or_else(|| existing_ephemeral.map(|s| stored_ttl(s).unwrap_or(DEFAULT_TTL)));
    Ok(match ttl {
        None => super::Lifetime::default(),
        Some(ttl) => super::Lifetime {
            tags: tags(now, ttl),
            refresh: existing.is_none_or(|s| needs_extension(s, now, ttl)),
        },
    })
}

/// TTL of an ephemeral stack whose TTL tag was lost.
const DEFAULT_TTL: Duration = Duration::from_secs(48 * 3600);

/// One line of `deployer ls`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StackRow {
    /// Stack name.
    pub stack: String,
    /// `deployer:app`.
    pub app: String,
    /// `deployer:env`.
    pub env: String,
    /// Stack status.
    pub status: StackStatus,
    /// Last deployment.
    pub updated: Option<SystemTime>,
    /// Expiry of an ephemeral env, RFC 3339 (the tag's text).
    pub expires: Option<String>,
    /// Whether termination protection is on.
    pub termination_protection: bool,
    /// The shared load balancer stack the env is attached to, and its slot (`<stack>/<slot>`).
    pub shared_alb: Option<String>,
    /// What it costs a month before use, in cents (an attached env: with its share of the
    /// shared load balancer); `None` where unknown.
    pub monthly_fixed_cents: Option<u64>,
}

impl StackRow {
    /// The row for a stack.
    pub fn of(stack: &Stack) -> StackRow {
        StackRow {
            stack: stack.name.clone(),
            app: stack.tags.get(APP_TAG).cloned().unwrap_or_default(),
            env: stack.tags.get(ENV_TAG).cloned().unwrap_or_default(),
            status: stack.status.clone(),
            updated: stack.updated.or(stack.created),
            expires: stack.tags.get(EXPIRES_TAG).cloned(),
            termination_protection: stack.termination_protection,
            shared_alb: stack.tags.get(SHARED_TAG).cloned(),
            monthly_fixed_cents: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudformation::types::StackStatus;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn stack(tags: &[(&str, &str)]) -> Stack {
        Stack {
            id: "id".into(),
            name: "s".into(),
            status: StackStatus::UpdateComplete,
            reason: None,
            outputs: vec![],
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            termination_protection: false,
            parameters: BTreeMap::new(),
            created: Some(at(1_000)),
            updated: None,
            drift: None,
        }
    }

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn durations_and_times() {
        assert_eq!(
            parse_duration("48h").unwrap(),
            Duration::from_secs(48 * 3600)
        );
        assert_eq!(
            parse_duration("1d 12h").unwrap(),
            Duration::from_secs(36 * 3600)
        );
        assert!(parse_duration("soon").is_err());
        assert!(
            parse_duration("10s")
                .unwrap_err()
                .contains("shorter than a minute")
        );
        assert_eq!(format_time(at(NOW)), "2027-01-15T08:00:00Z");
        assert_eq!(parse_time("2027-01-15T08:00:00Z"), Some(at(NOW)));
        let t = tags(at(NOW), Duration::from_secs(3600));
        assert_eq!(t[EXPIRES_TAG], "2027-01-15T09:00:00Z");
        assert_eq!(t[TTL_TAG], "1h");
        assert_eq!(t[EPHEMERAL_TAG], "true");
    }

    #[test]
    fn gc_deletes_only_expired_ephemeral_deployer_stacks() {
        let ttl = |expires: &str| {
            stack(&[
                (APP_TAG, "a"),
                (EPHEMERAL_TAG, "true"),
                (EXPIRES_TAG, expires),
            ])
        };
        let now = at(NOW);
        let expired = ttl("2027-01-15T07:59:59Z");
        assert_eq!(
            gc_verdict(&expired, now, None),
            Verdict::Delete("expired at 2027-01-15T07:59:59Z".into())
        );
        assert_eq!(
            gc_verdict(&ttl("2027-01-15T08:00:01Z"), now, None),
            Verdict::Skip("expires at 2027-01-15T08:00:01Z".into())
        );
        assert_eq!(
            gc_verdict(&ttl("garbage"), now, None),
            Verdict::Skip("unreadable expiry `garbage`".into())
        );
        assert_eq!(
            gc_verdict(
                &stack(&[(APP_TAG, "a"), (EPHEMERAL_TAG, "true")]),
                now,
                None
            ),
            Verdict::Skip("no expiry tag".into())
        );
        assert_eq!(
            gc_verdict(
                &stack(&[
                    (EPHEMERAL_TAG, "true"),
                    (EXPIRES_TAG, "2000-01-01T00:00:00Z")
                ]),
                now,
                None
            ),
            Verdict::Skip("not managed by deployer".into())
        );
        assert_eq!(
            gc_verdict(&stack(&[(APP_TAG, "a")]), now, None),
            Verdict::Skip("not ephemeral".into())
        );
        // The shared load balancer goes with its last env's `down`, never by itself.
        assert_eq!(
            gc_verdict(
                &stack(&[(APP_TAG, "a"), (SHARED_TAG, "a-shared-alb")]),
                now,
                Some(Duration::ZERO)
            ),
            Verdict::Skip("the app's shared load balancer: deleted with its last env".into())
        );
        assert_eq!(
            gc_verdict(
                &stack(&[(APP_TAG, "a"), (EPHEMERAL_TAG, "false")]),
                now,
                None
            ),
            Verdict::Skip("not ephemeral".into())
        );
        let mut protected = expired.clone();
        protected.termination_protection = true;
        assert_eq!(
            gc_verdict(&protected, now, None),
            Verdict::Skip("termination protection is on".into())
        );
        let mut running = expired.clone();
        running.status = StackStatus::UpdateInProgress;
        assert_eq!(
            gc_verdict(&running, now, None),
            Verdict::Skip("UPDATE_IN_PROGRESS is running".into())
        );
        // --older-than looks at the last deployment instead of the expiry.
        let mut old = ttl("2099-01-01T00:00:00Z");
        old.updated = Some(at(NOW - 3 * 86_400));
        assert_eq!(
            gc_verdict(&old, now, Some(Duration::from_secs(2 * 86_400))),
            Verdict::Delete("last deployed 3days ago".into())
        );
        assert_eq!(
            gc_verdict(&old, now, Some(Duration::from_secs(4 * 86_400))),
            Verdict::Skip("last deployed 3days ago".into())
        );
    }

    #[test]
    fn expiry_is_extended_once_a_tenth_of_the_ttl_has_passed() {
        let ttl = Duration::from_secs(48 * 3600);
        let fresh = stack(&[(EXPIRES_TAG, &format_time(at(NOW) + ttl))]);
        assert!(!needs_extension(&fresh, at(NOW + 60), ttl));
        assert!(needs_extension(&fresh, at(NOW + 5 * 3600), ttl));
        assert!(needs_extension(&stack(&[]), at(NOW), ttl));
    }

    #[test]
    fn branch_names_become_valid_envs() {
        assert_eq!(
            env_from_branch("feature/Add-Login", 32),
            "feature-add-login"
        );
        assert_eq!(env_from_branch("refs/heads/pr_42", 32), "refs-heads-pr-42");
        assert_eq!(env_from_branch("123-fix", 32), "b-123-fix");
        assert_eq!(env_from_branch("--x--", 32), "x");
        assert_eq!(env_from_branch("", 32), "b");
        let long = env_from_branch("feature/a-very-long-branch-name-that-goes-on-and-on", 24);
        assert_eq!(long.len(), 24, "{long}");
        assert!(long.starts_with("feature-a-very-lo-"), "{long}");
        let other = env_from_branch("feature/a-very-long-branch-name-that-goes-on-and-off", 24);
        assert_ne!(long, other, "a hash suffix keeps truncated names apart");
        for name in [long, other, env_from_branch("Ünïcode/ブランチ", 32)] {
            assert!(crate::spec::names::check_env(&name).is_ok(), "{name}");
        }
    }

    #[test]
    fn lifetime_keeps_data_safe() {
        let spec = crate::spec::parse("app: notes\nenv: staging\n", "s.yaml").unwrap();
        let now = at(NOW);
        let day = Duration::from_secs(86_400);
        // A new env with --ttl is ephemeral and tagged.
        let fresh = lifetime(&spec, Some(day), None, now).unwrap();
        assert_eq!(fresh.tags[EXPIRES_TAG], "2027-01-16T08:00:00Z");
        assert!(fresh.refresh);
        // A live persistent env is never turned ephemeral.
        let persistent = stack(&[(APP_TAG, "notes")]);
        let refused = lifetime(&spec, Some(day), Some(&persistent), now).unwrap_err();
        assert_eq!(refused.code, crate::exit::Code::Usage);
        assert!(
            refused.message.contains("would delete its tables"),
            "{}",
            refused.message
        );
        // Without --ttl, a persistent env stays persistent.
        assert!(
            lifetime(&spec, None, Some(&persistent), now)
                .unwrap()
                .tags
                .is_empty()
        );
        // An ephemeral env stays ephemeral with its stored TTL, extended only when due.
        let live = stack(&[
            (APP_TAG, "notes"),
            (EPHEMERAL_TAG, "true"),
            (TTL_TAG, "1day"),
            (EXPIRES_TAG, "2027-01-16T07:59:00Z"),
        ]);
        let kept = lifetime(&spec, None, Some(&live), now).unwrap();
        assert_eq!(kept.tags[TTL_TAG], "1day");
        assert!(!kept.refresh, "23 h 59 min of 24 h left");
        assert!(
            lifetime(&spec, None, Some(&live), at(NOW + 3 * 3600))
                .unwrap()
                .refresh
        );
        // A failed first creation holds nothing: it may become ephemeral.
        let mut failed = persistent.clone();
        failed.status = StackStatus::RollbackComplete;
        assert!(
            !lifetime(&spec, Some(day), Some(&failed), now)
                .unwrap()
                .tags
                .is_empty()
        );
    }

    #[test]
    fn only_artifacts_no_other_stack_uses_are_unreferenced() {
        let mut mine = stack(&[]);
        mine.id = "mine".into();
        mine.parameters = BTreeMap::from([
            ("ApiCodeKey".into(), "a/api/1.zip".into()),
            ("WorkerCodeKey".into(), "a/worker/2.zip".into()),
            ("ApiCodeBucket".into(), "bucket".into()),
        ]);
        let mut other = stack(&[]);
        other.id = "other".into();
        other.parameters = BTreeMap::from([("ApiCodeKey".into(), "a/api/1.zip".into())]);
        assert_eq!(
            unreferenced_artifacts(&mine, &[mine.clone(), other]),
            ["a/worker/2.zip"]
        );
    }
}
