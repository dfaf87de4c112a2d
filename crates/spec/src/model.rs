//! The validated stack spec. Field docs double as the JSON Schema descriptions editors show.

use indexmap::IndexMap;
use schemars::JsonSchema;

use super::diag::Pos;

/// A deployer stack spec: one Rust service (one or more Lambda functions), its HTTP front door and
/// its DynamoDB tables. The stack is named `<app>-<env>`.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "deployer stack spec")]
pub struct Spec {
    /// Application name: a lowercase letter, then up to 30 lowercase letters, digits or dashes.
    #[schemars(regex(pattern = super::names::LOWER_DASH_PATTERN), length(max = super::names::APP_MAX))]
    pub app: String,
    /// Default environment; `--env` overrides it. Named as `app` is, up to 32 characters.
    #[serde(default = "default_env")]
    #[schemars(regex(pattern = super::names::LOWER_DASH_PATTERN), length(max = super::names::ENV_MAX))]
    pub env: String,
    /// AWS region; without it the SDK's region chain decides (AWS_REGION, profile, ...).
    pub region: Option<String>,
    /// Stack tags; CloudFormation propagates them to the resources.
    #[serde(default)]
    pub tags: IndexMap<String, String>,
    /// Environments that get termination protection and that `deployer down` refuses to delete.
    #[serde(default)]
    pub protected_envs: Vec<String>,
    /// `up` hotswaps in every env not in `protected_envs`: when function code is all that
    /// changed, it updates the functions directly instead of through CloudFormation, and the next
    /// full `up` puts the template's code back. `up --hotswap`/`--no-hotswap` override it.
    #[serde(default)]
    pub hotswap: bool,
    /// Where the load balancer lives. Default: the shared VPC of the region's bootstrap stack.
    pub network: Option<Network>,
    /// The Application Load Balancer in front of the functions. Without it there is no HTTP entry.
    pub alb: Option<Alb>,
    /// Lambda functions by name.
    #[serde(default)]
    pub functions: IndexMap<String, Function>,
    /// DynamoDB tables by name.
    #[serde(default)]
    pub tables: IndexMap<String, Table>,
    /// Who hears about alarms: an SNS topic per stack mailing `email`, and/or an existing topic.
    pub alarms: Option<AlarmTargets>,
    /// The request `up` makes to the load balancer once the stack is up, to prove the service
    /// answers. Default: `GET /`, any status below 500.
    pub verify: Option<Verify>,
    /// How stack operations run.
    pub deploy: Option<Deploy>,
    /// Raw CloudFormation merged into the rendered template. A logical id clash is an error.
    #[serde(default)]
    #[schemars(schema_with = "extra_schema")]
    pub extra: Option<Extra>,
}

/// How CloudFormation runs the stack's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// CloudFormation's express mode: an operation ends once every resource's configuration is
    /// applied, without waiting for it to stabilize (a load balancer's provisioning, say), and
    /// without rollback. Default: on for ephemeral envs (`--ttl`, `--env-from-branch`), off
    /// otherwise; a protected env uses it only when this says `true`. `up --express` /
    /// `--no-express` override it.
    pub express: Option<bool>,
}

/// What `up` asks the service after deploying.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// The path to GET, starting with `/`.
    #[serde(default = "default_verify_path")]
    pub path: String,
    /// The status it must answer, 100..=599. Default: any status below 500.
    #[schemars(range(min = HTTP_STATUS.min, max = HTTP_STATUS.max))]
    pub expect: Option<u32>,
}

/// The path `up` verifies when the spec names none.
pub fn default_verify_path() -> String {
    "/".to_string()
}

/// Where alarm notifications go. Without it alarms only change state in the console.
#[derive(Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmTargets {
    /// Addresses subscribed to a topic the stack creates (each confirms by mail once).
    #[serde(default)]
    pub email: Vec<String>,
    /// An existing SNS topic that alarms also notify.
    pub sns_topic_arn: Option<String>,
}

/// A whole-number field's range and default: the one statement of it that the decoder, the JSON
/// Schema and the docs read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Smallest value accepted.
    pub min: i64,
    /// Largest value accepted.
    pub max: i64,
    /// The value when the spec gives none, if it has one.
    pub default: Option<u32>,
}

/// `alb.idle_timeout`, seconds.
pub const IDLE_TIMEOUT: Bounds = Bounds {
    min: 1,
    max: 4000,
    default: Some(60),
};
/// A function's `memory`, MB.
pub const MEMORY: Bounds = Bounds {
    min: 128,
    max: 10240,
    default: Some(256),
};
/// A function's `timeout`, seconds.
pub const TIMEOUT: Bounds = Bounds {
    min: 1,
    max: 900,
    default: Some(10),
};
/// A function's `reserved_concurrency`.
pub const RESERVED_CONCURRENCY: Bounds = Bounds {
    min: 0,
    max: 100_000,
    default: None,
};
/// A function's `log_retention_days` (also one of [`LOG_RETENTION_DAYS`]).
pub const LOG_RETENTION: Bounds = Bounds {
    min: 1,
    max: 3653,
    default: Some(14),
};
/// Provisioned `billing.read` and `billing.write`.
pub const CAPACITY: Bounds = Bounds {
    min: 1,
    max: 40_000,
    default: None,
};

/// `verify.expect`, an HTTP status.
pub const HTTP_STATUS: Bounds = Bounds {
    min: 100,
    max: 599,
    default: None,
};

/// Every bounded field: its path in the JSON Schema (`$defs` type, property) and its bounds. A
/// test checks the schema against this list.
pub const BOUNDED: &[(&str, &str, Bounds)] = &[
    ("Alb", "idle_timeout", IDLE_TIMEOUT),
    ("Function", "memory", MEMORY),
    ("Function", "timeout", TIMEOUT),
    ("Function", "reserved_concurrency", RESERVED_CONCURRENCY),
    ("Function", "log_retention_days", LOG_RETENTION),
    ("Verify", "expect", HTTP_STATUS),
];

fn default_of(bounds: Bounds) -> u32 {
    bounds.default.expect("only fields with a default use it")
}

/// The default environment name when the spec gives none.
pub fn default_env() -> String {
    "dev".to_string()
}

/// Reuse an existing VPC (`vpc_id` + `subnet_ids`) or create a dedicated one (`dedicated: true`).
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// An existing VPC, e.g. `vpc-0123abcd`.
    pub vpc_id: Option<String>,
    /// Subnets of that VPC in at least two Availability Zones.
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    /// `true`: the stack creates its own VPC instead of using the shared one.
    #[serde(default)]
    pub dedicated: bool,
}

/// Where the stack's load balancer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement<'a> {
    /// The VPC exported by the `deployer-bootstrap` stack of the region.
    SharedVpc,
    /// An existing VPC named in the spec.
    Existing {
        /// The VPC.
        vpc_id: &'a str,
        /// Its subnets for the load balancer.
        subnet_ids: &'a [String],
    },
    /// A VPC created by and for this stack.
    Dedicated,
}

impl Spec {
    /// Where the load balancer goes, from the `network` section.
    pub fn placement(&self) -> Placement<'_> {
        match &self.network {
            Some(Network {
                vpc_id: Some(vpc_id),
                subnet_ids,
                ..
            }) => Placement::Existing { vpc_id, subnet_ids },
            Some(Network {
                dedicated: true, ..
            }) => Placement::Dedicated,
            _ => Placement::SharedVpc,
        }
    }

    /// The ARNs AWS accepts only in the stack's own region, by field (see
    /// [`super::names::REGIONAL_ARNS`]): `validate` checks them when the spec names its region,
    /// `up` and `plan` once the region is known.
    pub fn regional_arns(&self) -> Vec<(&'static str, &str)> {
        let mut arns = Vec::new();
        if let Some(arn) = self.alb.as_ref().and_then(|a| a.certificate_arn.as_deref()) {
            arns.push(("certificate_arn", arn));
        }
        if let Some(arn) = self
            .alarms
            .as_ref()
            .and_then(|a| a.sns_topic_arn.as_deref())
        {
            arns.push(("sns_topic_arn", arn));
        }
        for table in self.tables.values() {
            if let Encryption::Kms(arn) = &table.encryption {
                arns.push(("encryption", arn.as_str()));
            }
        }
        arns
    }
}

/// The Application Load Balancer.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alb {
    /// `true`: reachable only from inside the VPC.
    #[serde(default)]
    pub internal: bool,
    /// An ACM certificate ARN: adds HTTPS:443 (TLS 1.2+) and redirects HTTP:80 to it.
    pub certificate_arn: Option<String>,
    /// Who may connect: IPv4 CIDRs (the load balancer is IPv4-only).
    #[serde(default = "default_allowed_cidrs")]
    pub allowed_cidrs: Vec<String>,
    /// Connection idle timeout in seconds.
    #[serde(default = "default_idle_timeout")]
    #[schemars(range(min = IDLE_TIMEOUT.min, max = IDLE_TIMEOUT.max))]
    pub idle_timeout: u32,
    /// Which envs attach to one load balancer shared by the app's envs (the `<app>-shared-alb`
    /// stack) instead of creating their own: `ephemeral` (default: envs made with `--ttl` or
    /// `--env-from-branch`), `all`, or `none`.
    #[serde(default)]
    pub share: Share,
    /// Shared envs answer at `<env>.<preview_domain>` (HTTPS, with `certificate_arn` a
    /// wildcard certificate for `*.<preview_domain>`); without it, each shared env gets a
    /// listener port of its own on the shared load balancer.
    pub preview_domain: Option<String>,
    /// The Route 53 hosted zone of `domain` and of the `*.<preview_domain>` record. Default:
    /// the public zone `up` finds by name (`ListHostedZonesByName`); for `preview_domain`, the
    /// zone named after its parent (`example.com` for `preview.example.com`).
    pub hosted_zone_id: Option<String>,
    /// The env's own HTTPS name, such as `api.example.com`: the stack makes an ACM certificate
    /// validated by DNS in the zone, an HTTPS listener with it, and an alias record. It names
    /// the spec's own `env`; another env with its own load balancer answers at
    /// `<env>.<domain>`, an env on the shared load balancer at its `preview_domain` name.
    #[serde(default)]
    #[schemars(schema_with = "domain_schema")]
    pub domain: Option<Domain>,
}

/// `alb.domain`: the name, and the env it names as it is (the spec's `env`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// The domain as written.
    pub name: String,
    /// The spec's `env`: the env that answers at `name` itself.
    pub env: String,
}

impl Domain {
    /// The HTTPS name of `env`: the domain for the spec's own env, `<env>.<domain>` for another.
    pub fn for_env(&self, env: &str) -> String {
        match env == self.env {
            true => self.name.clone(),
            false => format!("{env}.{}", self.name),
        }
    }
}

/// Which envs of an app share one load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Share {
    /// Ephemeral envs (`--ttl`, `--env-from-branch`) share one; the others have their own.
    #[default]
    Ephemeral,
    /// Every env of the app shares one.
    All,
    /// Each env has its own load balancer.
    None,
}

impl Alb {
    /// Whether an env attaches to the app's shared load balancer.
    pub fn shared_for(&self, ephemeral: bool) -> bool {
        match self.share {
            Share::Ephemeral => ephemeral,
            Share::All => true,
            Share::None => false,
        }
    }
}

fn default_allowed_cidrs() -> Vec<String> {
    vec!["0.0.0.0/0".to_string()]
}

pub(super) fn default_idle_timeout() -> u32 {
    default_of(IDLE_TIMEOUT)
}

/// CPU architecture of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// Graviton; cheaper per GB-second.
    #[default]
    Arm64,
    /// Intel/AMD.
    X86_64,
}

impl Architecture {
    /// The name Lambda and the spec use.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Arm64 => "arm64",
            Architecture::X86_64 => "x86_64",
        }
    }
}

/// One Lambda function built from a cargo project.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Function {
    /// Where the function's key starts in the spec.
    #[schemars(skip)]
    pub pos: Pos,
    /// The cargo project directory, relative to the spec file.
    pub path: String,
    /// The cargo binary name (default: the package name).
    pub binary: Option<String>,
    /// `arm64` (default) or `x86_64`.
    #[serde(default)]
    pub architecture: Architecture,
    /// Memory in MB, 128..=10240.
    #[serde(default = "default_memory")]
    #[schemars(range(min = MEMORY.min, max = MEMORY.max))]
    pub memory: u32,
    /// Timeout in seconds, 1..=900.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = TIMEOUT.min, max = TIMEOUT.max))]
    pub timeout: u32,
    /// Reserved concurrency (also caps the function).
    #[schemars(range(min = RESERVED_CONCURRENCY.min, max = RESERVED_CONCURRENCY.max))]
    pub reserved_concurrency: Option<u32>,
    /// Environment variables.
    #[serde(default)]
    #[schemars(schema_with = "environment_schema")]
    pub environment: IndexMap<String, String>,
    /// `true`: the listener's default action forwards here (at most one function).
    #[serde(default)]
    pub default_route: bool,
    /// Where `default_route` is set, for cross-check messages.
    #[schemars(skip)]
    pub default_route_pos: Pos,
    /// ALB listener rules, in order of priority.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Tables this function may use, with the access it needs. Sets `TABLE_<NAME>`.
    #[serde(default)]
    pub tables: IndexMap<String, Access>,
    /// Where each entry of `tables` is, for cross-check messages (same order as `tables`).
    #[schemars(skip)]
    pub table_ref_pos: Vec<Pos>,
    /// Days CloudWatch keeps the function's logs.
    #[serde(default = "default_log_retention_days")]
    #[schemars(range(min = LOG_RETENTION.min, max = LOG_RETENTION.max))]
    pub log_retention_days: u32,
    /// Errors and Throttles alarms (and target 5xx when routed).
    #[serde(default = "default_true")]
    pub alarms: bool,
    /// A path the load balancer polls (e.g. `/health`); off by default: each check is a billed
    /// invocation, and with one Lambda target a failing check changes nothing (fail open).
    pub health_check: Option<String>,
    /// How the deployment zip is made.
    pub build: Option<Build>,
    /// Secrets the function reads at start-up, by environment variable name:
    /// `ssm:/path/name` (an SSM parameter; `ssm:name` is `/<app>/<env>/name`) or
    /// `secretsmanager:name`. Only the name reaches the function, as `<NAME>_PARAMETER` or
    /// `<NAME>_SECRET_ID`, with read access to exactly that parameter or secret.
    #[serde(default)]
    #[schemars(schema_with = "secrets_schema")]
    pub secrets: IndexMap<String, Secret>,
    /// How a new version of a routed function takes traffic: in steps (`canary`, `linear`) or
    /// at once (`all_at_once`), watching alarms and moving traffic back if one fires. Absent:
    /// a change serves all traffic as soon as the stack is updated.
    pub rollout: Option<Rollout>,
}

/// `functions.<fn>.rollout`: how `up` shifts traffic to a new version.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// Where `rollout` is in the spec.
    #[schemars(skip)]
    pub pos: Pos,
    /// `canary`: `percent`, then all after `wait`; `linear`: `percent` more at each `wait`;
    /// `all_at_once`: all at once, then alarms watched for `wait`.
    pub strategy: Strategy,
    /// The share of requests the new version takes first (`canary`) or gains at each step
    /// (`linear`). Default 10; not for `all_at_once`.
    #[serde(default = "default_rollout_percent")]
    #[schemars(range(min = ROLLOUT_PERCENT.min, max = ROLLOUT_PERCENT.max))]
    pub percent: u32,
    /// How long each step is held while the alarms are watched: `30s`, `5m`, `1h` (at most
    /// one hour). Default `5m` for `canary`, `1m` for `linear`, `0s` for `all_at_once`.
    #[serde(default)]
    #[schemars(schema_with = "wait_schema", extend("default" = "5m"))]
    pub wait: std::time::Duration,
    /// CloudWatch alarms, by name, watched besides the new version's own (its errors, and
    /// the 5xx answers of its target group).
    #[serde(default)]
    pub alarms: Vec<String>,
}

/// How a new version takes traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// A share first, the rest after a wait.
    Canary,
    /// Equal steps, a wait after each.
    Linear,
    /// Everything at once; the wait only watches the alarms.
    AllAtOnce,
}

impl Strategy {
    /// As the spec writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Canary => "canary",
            Strategy::Linear => "linear",
            Strategy::AllAtOnce => "all_at_once",
        }
    }

    /// The wait when the spec gives none.
    pub fn default_wait(self) -> std::time::Duration {
        std::time::Duration::from_secs(match self {
            Strategy::Canary => 300,
            Strategy::Linear => 60,
            Strategy::AllAtOnce => 0,
        })
    }
}

/// `rollout.percent`.
pub const ROLLOUT_PERCENT: Bounds = Bounds {
    min: 1,
    max: 99,
    default: Some(10),
};

/// The longest `rollout.wait`: a step held longer is better served by a separate env.
pub const ROLLOUT_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(3600);

/// The most alarms a rollout watches besides its own (each is read at every poll).
pub const ROLLOUT_ALARMS_MAX: usize = 10;

pub(super) fn default_rollout_percent() -> u32 {
    default_of(ROLLOUT_PERCENT)
}

/// Where a secret is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretStore {
    /// An SSM Parameter Store parameter (a `SecureString`).
    Ssm,
    /// An AWS Secrets Manager secret.
    SecretsManager,
}

impl SecretStore {
    /// The prefix of a reference in the spec.
    pub fn prefix(self) -> &'static str {
        match self {
            SecretStore::Ssm => "ssm",
            SecretStore::SecretsManager => "secretsmanager",
        }
    }

    /// The suffix of the environment variable that carries the name to the function.
    pub fn variable_suffix(self) -> &'static str {
        match self {
            SecretStore::Ssm => "_PARAMETER",
            SecretStore::SecretsManager => "_SECRET_ID",
        }
    }
}

/// A secret a function reads: where it is, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// Parameter Store or Secrets Manager.
    pub store: SecretStore,
    /// The name as written after the prefix.
    pub name: String,
    /// The customer-managed KMS key that encrypts it, when `up` found one (never in the spec):
    /// the function then gets `kms:Decrypt` on that key, through the secret's service only.
    pub kms_key_arn: Option<String>,
}

impl Secret {
    /// The parameter's or secret's name in `app`/`env`: a relative SSM name (no leading `/`)
    /// lives under `/<app>/<env>/`.
    pub fn full_name(&self, app: &str, env: &str) -> String {
        match self.store {
            SecretStore::Ssm if !self.name.starts_with('/') => {
                format!("/{app}/{env}/{}", self.name)
            }
            _ => self.name.clone(),
        }
    }

    /// The reference as the spec writes it, with the full name: `ssm:/notes/prod/db`.
    pub fn reference(&self, app: &str, env: &str) -> String {
        format!("{}:{}", self.store.prefix(), self.full_name(app, env))
    }

    /// The environment variable that carries the name to a function, for secret `name`.
    pub fn variable(&self, name: &str) -> String {
        format!("{name}{}", self.store.variable_suffix())
    }
}

pub(super) fn default_memory() -> u32 {
    default_of(MEMORY)
}
pub(super) fn default_timeout() -> u32 {
    default_of(TIMEOUT)
}
pub(super) fn default_log_retention_days() -> u32 {
    default_of(LOG_RETENTION)
}
fn default_true() -> bool {
    true
}

/// The retention periods CloudWatch Logs accepts.
pub const LOG_RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// One ALB listener rule: a path pattern and/or a host, optionally limited to methods.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Where the route starts in the spec.
    #[schemars(skip)]
    pub pos: Pos,
    /// An ALB path pattern such as `/notes*` (`*` and `?` are wildcards).
    pub path: Option<String>,
    /// An ALB host pattern such as `api.example.com`.
    pub host: Option<String>,
    /// HTTP methods; all when absent.
    #[serde(default)]
    pub methods: Vec<String>,
}

/// The DynamoDB access a function gets to a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Get, query, scan.
    Read,
    /// Put, update, delete.
    Write,
    /// Both.
    ReadWrite,
}

/// How a function's deployment zip is produced.
#[derive(Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// `docker` (default), `cargo-lambda` or `zip`.
    #[serde(default)]
    pub method: BuildMethod,
    /// With `zip`: the prebuilt zip, relative to the spec file.
    pub path: Option<String>,
    /// With `docker`: a Dockerfile to use instead of the shipped one, relative to the spec file.
    pub dockerfile: Option<String>,
    /// With `docker`: the builder stage's base image (a Debian-based image with cargo and a C
    /// linker; default `rust:1-bookworm`). `--builder-image` / `DEPLOYER_BUILDER_IMAGE` override it.
    pub builder_image: Option<String>,
}

/// The build methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BuildMethod {
    /// The multistage Dockerfile.
    #[default]
    Docker,
    /// `cargo lambda build` on the host.
    CargoLambda,
    /// A prebuilt zip.
    Zip,
}

/// A DynamoDB table.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Where the table's key starts in the spec.
    #[schemars(skip)]
    pub pos: Pos,
    /// The partition (hash) key.
    pub partition_key: Key,
    /// The sort (range) key.
    pub sort_key: Option<Key>,
    /// `on_demand` (default) or provisioned `{ read: N, write: N }`.
    #[serde(default)]
    #[schemars(schema_with = "billing_schema")]
    pub billing: Billing,
    /// The attribute holding an expiry time (epoch seconds).
    pub ttl_attribute: Option<String>,
    /// Stream view type.
    pub stream: Option<StreamView>,
    /// Continuous backups.
    #[serde(default = "default_true")]
    pub point_in_time_recovery: bool,
    /// Global secondary indexes. A deployed table gains or loses one per update: deployer
    /// applies more as several updates, one index per table each.
    #[serde(default)]
    pub indexes: Vec<Index>,
    /// `aws_owned` (default, free), `aws_managed` (the account's `aws/dynamodb` KMS key, billed
    /// per request) or a KMS key ARN of your own.
    #[serde(default)]
    #[schemars(schema_with = "encryption_schema")]
    pub encryption: Encryption,
}

/// Which key encrypts a table at rest (DynamoDB always encrypts).
#[derive(Debug, Clone, PartialEq, Eq, Default, JsonSchema)]
pub enum Encryption {
    /// A key AWS owns: no KMS charges.
    #[default]
    AwsOwned,
    /// The AWS-managed `aws/dynamodb` KMS key in the account.
    AwsManaged,
    /// A customer-managed KMS key.
    Kms(String),
}

/// A key attribute.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Key {
    /// Where the key starts in the spec.
    #[schemars(skip)]
    pub pos: Pos,
    /// Attribute name.
    pub name: String,
    /// Attribute type.
    #[serde(rename = "type")]
    pub kind: KeyType,
}

/// DynamoDB key attribute types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
pub enum KeyType {
    /// String.
    S,
    /// Number.
    N,
    /// Binary.
    B,
}

impl KeyType {
    /// The DynamoDB type letter.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::S => "S",
            KeyType::N => "N",
            KeyType::B => "B",
        }
    }
}

/// Table capacity.
#[derive(Debug, Clone, PartialEq, Eq, Default, JsonSchema)]
#[serde(untagged)]
pub enum Billing {
    /// Pay per request.
    #[default]
    OnDemand,
    /// Provisioned capacity units.
    Provisioned {
        /// Read capacity units.
        read: u32,
        /// Write capacity units.
        write: u32,
    },
}

/// What a table stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamView {
    /// Keys only.
    KeysOnly,
    /// The item after the change.
    NewImage,
    /// The item before the change.
    OldImage,
    /// Both.
    NewAndOldImages,
}

impl StreamView {
    /// The DynamoDB `StreamViewType`.
    pub fn as_cfn(self) -> &'static str {
        match self {
            StreamView::KeysOnly => "KEYS_ONLY",
            StreamView::NewImage => "NEW_IMAGE",
            StreamView::OldImage => "OLD_IMAGE",
            StreamView::NewAndOldImages => "NEW_AND_OLD_IMAGES",
        }
    }
}

/// A global secondary index.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Index {
    /// Index name.
    pub name: String,
    /// The index partition key.
    pub partition_key: Key,
    /// The index sort key.
    pub sort_key: Option<Key>,
    /// `all` (default), `keys_only`, or a list of attributes to include.
    #[serde(default)]
    #[schemars(schema_with = "projection_schema")]
    pub projection: Projection,
}

/// Which attributes an index copies.
#[derive(Debug, Clone, PartialEq, Eq, Default, JsonSchema)]
#[serde(untagged)]
pub enum Projection {
    /// Every attribute.
    #[default]
    All,
    /// Only keys.
    KeysOnly,
    /// Keys plus these attributes.
    Include(Vec<String>),
}

/// Raw CloudFormation sections merged into the rendered template.
#[derive(Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Extra {
    /// Extra template sections (`Resources`, `Outputs`, `Conditions`, `Mappings`, `Parameters`),
    /// each a mapping from logical id to its CloudFormation definition.
    #[serde(flatten)]
    pub sections: IndexMap<String, IndexMap<String, serde_json::Value>>,
    /// Where each `(section, logical id)` is, for clash messages.
    #[schemars(skip)]
    pub positions: Vec<(String, String, Pos)>,
}

// The YAML forms of a few fields are unions of a word and a structure, which derive cannot express.

fn billing_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "`on_demand` (default) or provisioned `{ read: N, write: N }`.",
        "oneOf": [
            { "const": "on_demand" },
            {
                "type": "object",
                "properties": {
                    "read": { "type": "integer", "minimum": CAPACITY.min, "maximum": CAPACITY.max },
                    "write": { "type": "integer", "minimum": CAPACITY.min, "maximum": CAPACITY.max }
                },
                "required": ["read", "write"],
                "additionalProperties": false
            }
        ]
    })
}

fn encryption_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "`aws_owned` (default), `aws_managed`, or a KMS key ARN.",
        "default": "aws_owned",
        "oneOf": [
            { "enum": ["aws_owned", "aws_managed"] },
            { "type": "string", "pattern": "^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$" }
        ]
    })
}

fn projection_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "`all` (default), `keys_only`, or a list of attributes to include.",
        "oneOf": [
            { "enum": ["all", "keys_only"] },
            { "type": "array", "items": { "type": "string" }, "minItems": 1, "uniqueItems": true }
        ]
    })
}

fn extra_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let section = serde_json::json!({
        "type": "object",
        "propertyNames": { "pattern": "^[A-Za-z0-9]{1,255}$" },
        "additionalProperties": { "type": "object" }
    });
    schemars::json_schema!({
        "description": "Raw CloudFormation merged into the rendered template. A logical id clash is an error.",
        "type": "object",
        "properties": {
            "Resources": section, "Outputs": section, "Conditions": section,
            "Mappings": section, "Parameters": section
        },
        "additionalProperties": false
    })
}

fn secrets_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Secrets by environment variable name: `ssm:/path/name`, `ssm:name` (under `/<app>/<env>/`) or `secretsmanager:name`.",
        "type": "object",
        "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
        "additionalProperties": { "type": "string", "pattern": "^(ssm:[A-Za-z0-9_./-]+|secretsmanager:[A-Za-z0-9/_+=.@-]+)$" }
    })
}

fn wait_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "How long each step is held while alarms are watched: a whole number of seconds, minutes or hours (`30s`, `5m`, `1h`), at most one hour.",
        "type": "string",
        "pattern": "^[0-9]+(s|m|h)$"
    })
}

fn domain_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "The env's own HTTPS name, such as `api.example.com` (an ACM certificate validated in the Route 53 zone, and an alias record); another env answers at `<env>.<domain>`.",
        "type": "string",
        "maxLength": 64
    })
}

fn environment_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Environment variables (numbers and booleans are passed as text).",
        "type": "object",
        "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
        "additionalProperties": { "type": ["string", "number", "boolean"] }
    })
}
