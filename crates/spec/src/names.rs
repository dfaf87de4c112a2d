//! Naming rules of AWS and CloudFormation, and the names deployer derives from the spec.
//!
//! Each `check_*` returns the reason a value is refused, phrased to follow "`<what>` `<value>` ".

/// Lambda's limit on function names.
const FUNCTION_NAME_MAX: usize = 64;

fn all(s: &str, ok: impl Fn(char) -> bool) -> bool {
    s.chars().all(ok)
}

fn lower_dash_name(s: &str, max: usize) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.len() <= max
        && all(s, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
        })
        && !s.ends_with('-')
        && !s.contains("--")
}

/// The JSON Schema's statement of [`lower_dash_name`]: a lowercase letter, then lowercase
/// letters and digits, with single dashes between them (the length is the schema's
/// `maxLength`: [`APP_MAX`], [`ENV_MAX`]). A test feeds the same names to both.
pub const LOWER_DASH_PATTERN: &str = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$";
/// The longest `app`.
pub const APP_MAX: usize = 31;
/// The longest env name.
pub const ENV_MAX: usize = 32;

/// `app`: a lowercase letter, then up to 30 lowercase letters, digits or `-`.
pub fn check_app(s: &str) -> Result<(), String> {
    if lower_dash_name(s, APP_MAX) {
        Ok(())
    } else {
        Err("must be a lowercase letter followed by up to 30 lowercase letters, digits or single dashes".into())
    }
}

/// What follows `<app>-` in the name of the stack holding an app's shared load balancer: no env
/// may be called that.
pub const SHARED_ALB_ENV: &str = "shared-alb";

/// Environment names end up in stack names: the same shape as `app`, 32 characters at most.
pub fn check_env(s: &str) -> Result<(), String> {
    if s == SHARED_ALB_ENV || s.starts_with(&format!("{SHARED_ALB_ENV}-")) {
        Err(format!(
            "is reserved: `<app>-{SHARED_ALB_ENV}` is the stack of the app's shared load balancer"
        ))
    } else if lower_dash_name(s, ENV_MAX) {
        Ok(())
    } else {
        Err("must be a lowercase letter followed by up to 31 lowercase letters, digits or single dashes".into())
    }
}

/// Function and table names: lowercase, digits, `-` and `_`, starting with a letter.
pub fn check_resource_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    if matches!(chars.next(), Some('a'..='z'))
        && s.len() <= 48
        && all(s, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
        })
    {
        Ok(())
    } else {
        Err("must start with a lowercase letter and hold at most 48 lowercase letters, digits, `-` or `_`".into())
    }
}

/// The physical Lambda function name, `<app>-<env>-<function>`.
pub fn function_name(app: &str, env: &str, function: &str) -> String {
    format!("{app}-{env}-{function}")
}

/// The function name must fit Lambda's 64 characters for this env.
pub fn check_function_name(app: &str, env: &str, function: &str) -> Result<(), String> {
    let name = function_name(app, env, function);
    if name.len() <= FUNCTION_NAME_MAX {
        Ok(())
    } else {
        Err(format!(
            "function name `{name}` is {} characters and Lambda allows {FUNCTION_NAME_MAX}: shorten the app, env or function name",
            name.len()
        ))
    }
}

/// The CloudFormation stack name of an app in an env.
pub fn stack_name(app: &str, env: &str) -> String {
    format!("{app}-{env}")
}

/// A spec name as a CloudFormation logical id: `notes-api` and `notes_api` become `NotesApi`.
pub fn logical_id(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars).collect::<String>()
        })
        .collect()
}

/// The environment variable that carries a table's physical name: `TABLE_NOTES`.
pub fn table_env_var(table: &str) -> String {
    format!("TABLE_{}", table.replace('-', "_").to_ascii_uppercase())
}

/// `eu-west-1`, `us-gov-west-1`, ...
pub fn check_region(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split('-').collect();
    let ok = parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && all(p, |c| c.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && all(p, |c| c.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err("is not an AWS region name such as `eu-west-1`".into())
    }
}

/// Tags a resource holds at most (50) less deployer's own (`deployer:app`, `:env`, `:digest`,
/// and an ephemeral env's `:ephemeral`, `:expires-at`, `:ttl`); `aws:` tags do not count.
pub const MAX_SPEC_TAGS: usize = 44;

/// Values one ALB rule condition may match.
pub const MAX_CONDITION_VALUES: usize = 3;

/// Lambda's limit on a function's environment variables, in bytes.
pub const ENVIRONMENT_LIMIT: usize = 4096;

/// Tag text every resource deployer tags accepts: letters, digits, white space and `+ - = . _ :
/// /` (DynamoDB's rule, the strictest of them).
fn tag_characters(s: &str) -> Result<(), String> {
    match s
        .chars()
        .find(|c| !c.is_alphanumeric() && !c.is_whitespace() && !"+-=._:/".contains(*c))
    {
        Some(c) => Err(format!(
            "contains `{c}`: tags propagate to DynamoDB tables, which accept only letters, digits, spaces and `+ - = . _ : /`"
        )),
        None => Ok(()),
    }
}

/// Stack tag keys: 1..=128 characters DynamoDB accepts, not in the `aws:` or `deployer:` namespaces.
pub fn check_tag_key(s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().count() > 128 {
        Err("must be 1 to 128 characters".into())
    } else if s.starts_with("aws:") || s.starts_with("deployer:") {
        Err("uses a reserved prefix (`aws:`, `deployer:`)".into())
    } else {
        tag_characters(s)
    }
}

/// Stack tag values: at most 256 characters DynamoDB accepts.
pub fn check_tag_value(s: &str) -> Result<(), String> {
    if s.chars().count() > 256 {
        Err("is longer than 256 characters".into())
    } else {
        tag_characters(s)
    }
}

/// The region field of an ARN.
pub fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// The ARNs of a spec that AWS accepts only in the stack's own region: which field, and why.
pub const REGIONAL_ARNS: &[(&str, &str)] = &[
    (
        "certificate_arn",
        "a load balancer can only use an ACM certificate of its own region",
    ),
    (
        "sns_topic_arn",
        "CloudWatch alarms notify SNS topics of their own region only",
    ),
    (
        "encryption",
        "a DynamoDB table can only be encrypted with a KMS key of its own region",
    ),
];

/// An ARN in `region`; `field` is one of [`REGIONAL_ARNS`], whose reason the error gives.
pub fn check_same_region(field: &str, arn: &str, region: &str) -> Result<(), String> {
    let why = REGIONAL_ARNS
        .iter()
        .find(|(f, _)| *f == field)
        .map_or("AWS requires a resource of its own region", |(_, why)| why);
    match arn_region(arn) {
        Some(r) if r == region => Ok(()),
        r => Err(format!(
            "{field} is in {}, but the stack deploys to {region}: {why}",
            r.unwrap_or("no region")
        )),
    }
}

fn arn_of(s: &str, service: &str, resource: fn(&str) -> bool) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == service
        && check_region(parts[3]).is_ok()
        && parts[4].len() == 12
        && all(parts[4], |c| c.is_ascii_digit())
        && resource(parts[5])
}

/// `arn:aws:sns:eu-west-1:123456789012:alerts`.
pub fn check_sns_topic_arn(s: &str) -> Result<(), String> {
    if arn_of(s, "sns", |r| {
        !r.is_empty()
            && r.len() <= 256
            && all(r, |c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    }) {
        Ok(())
    } else {
        Err("is not an SNS topic ARN such as `arn:aws:sns:eu-west-1:123456789012:alerts`".into())
    }
}

/// `arn:aws:kms:eu-west-1:123456789012:key/<id>`.
pub fn check_kms_key_arn(s: &str) -> Result<(), String> {
    if arn_of(s, "kms", |r| {
        r.strip_prefix("key/").is_some_and(|id| !id.is_empty())
    }) {
        Ok(())
    } else {
        Err(
            "is not a KMS key ARN such as `arn:aws:kms:eu-west-1:123456789012:key/1234abcd-...`"
                .into(),
        )
    }
}

/// An address SNS can mail: one `@`, a domain with a dot, no spaces.
pub fn check_email(s: &str) -> Result<(), String> {
    let ok = s.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
    }) && !s.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err("is not an email address".into())
    }
}

/// A target group health check path: `/`, then at most 1023 printable characters, no wildcards.
pub fn check_health_check_path(s: &str) -> Result<(), String> {
    if !s.starts_with('/') {
        Err("must start with `/`".into())
    } else if s.len() > 1024 {
        Err("is longer than 1024 characters".into())
    } else if let Some(c) = s
        .chars()
        .find(|c| !c.is_ascii_graphic() || *c == '*' || *c == '?')
    {
        Err(format!(
            "contains `{c}`, which a health check path cannot hold"
        ))
    } else {
        Ok(())
    }
}

/// A rollout's wait: a whole number of seconds, minutes or hours (`30s`, `5m`, `1h`), at most
/// [`super::ROLLOUT_WAIT_MAX`].
pub fn parse_wait(s: &str) -> Result<std::time::Duration, String> {
    let unit = |c: char| match c {
        's' => Some(1),
        'm' => Some(60),
        'h' => Some(3600),
        _ => None,
    };
    let shape = || {
        "must be a whole number of seconds, minutes or hours, such as `30s`, `5m` or `1h`"
            .to_string()
    };
    let (digits, last) = s.split_at(s.len().saturating_sub(1));
    let seconds = last.chars().next().and_then(unit).ok_or_else(shape)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(shape());
    }
    let n: u64 = digits.parse().map_err(|_| shape())?;
    let wait = std::time::Duration::from_secs(n.saturating_mul(seconds));
    match wait > super::ROLLOUT_WAIT_MAX {
        true => Err("is longer than an hour, the longest step a rollout holds".into()),
        false => Ok(wait),
    }
}

/// A CloudWatch alarm name: 1 to 255 characters, none of them a control character.
pub fn check_alarm_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().count() > 255 {
        Err("must be 1 to 255 characters long".into())
    } else if s.chars().any(char::is_control) {
        Err("holds a control character".into())
    } else {
        Ok(())
    }
}

/// The longest name CloudFormation generates for a table: `<stack>-<LogicalId>-<13 characters>`.
pub fn generated_table_name_len(spec: &super::Spec, table: &str) -> usize {
    spec.stack_name().len() + 1 + logical_id(table).len() + "Table".len() + 1 + 13
}

/// The bytes a function's environment takes at most once deployed: the spec's variables and the
/// `TABLE_*` variables deployer adds, each holding a generated table name.
pub fn environment_size(spec: &super::Spec, f: &super::Function) -> usize {
    let own: usize = f.environment.iter().map(|(k, v)| k.len() + v.len()).sum();
    let tables: usize = f
        .tables
        .keys()
        .map(|t| table_env_var(t).len() + generated_table_name_len(spec, t))
        .sum();
    let secrets: usize = f
        .secrets
        .iter()
        .map(|(k, s)| s.variable(k).len() + s.full_name(&spec.app, &spec.env).len())
        .sum();
    own + tables + secrets
}

fn aws_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| {
        (1..=17).contains(&rest.len())
            && all(rest, |c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    })
}

/// `vpc-0123abcd`.
pub fn check_vpc_id(s: &str) -> Result<(), String> {
    if aws_id(s, "vpc-") {
        Ok(())
    } else {
        Err("is not a VPC id such as `vpc-0123abcd`".into())
    }
}

/// `subnet-0123abcd`.
pub fn check_subnet_id(s: &str) -> Result<(), String> {
    if aws_id(s, "subnet-") {
        Ok(())
    } else {
        Err("is not a subnet id such as `subnet-0123abcd`".into())
    }
}

/// `arn:aws:acm:<region>:<account>:certificate/<id>`.
pub fn check_certificate_arn(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "acm"
        && check_region(parts[3]).is_ok()
        && parts[4].len() == 12
        && all(parts[4], |c| c.is_ascii_digit())
        && parts[5]
            .strip_prefix("certificate/")
            .is_some_and(|id| !id.is_empty());
    if ok {
        Ok(())
    } else {
        Err("is not an ACM certificate ARN such as `arn:aws:acm:eu-west-1:123456789012:certificate/abc`".into())
    }
}

/// An IPv4 CIDR: the load balancer is IPv4-only, so an IPv6 rule would never match.
pub fn check_ipv4_cidr(s: &str) -> Result<(), String> {
    check_cidr(s)?;
    if s.contains(':') {
        Err("is IPv6, but the load balancer is IPv4-only (an internal ALB cannot be anything else): such a rule would never match".into())
    } else {
        Ok(())
    }
}

/// An IPv4 or IPv6 CIDR whose host bits are zero.
pub fn check_cidr(s: &str) -> Result<(), String> {
    let bad = || Err("is not a CIDR such as `203.0.113.0/24` or `::/0`".to_string());
    let Some((addr, len)) = s.split_once('/') else {
        return bad();
    };
    let Ok(len) = len.parse::<u32>() else {
        return bad();
    };
    let (bits, max) = match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => (u128::from(u32::from(a)) << 96, 32),
        Ok(std::net::IpAddr::V6(a)) => (u128::from(a), 128),
        Err(_) => return bad(),
    };
    if len > max {
        return bad();
    }
    let host_bits = if len == 0 {
        u128::MAX
    } else {
        (1u128 << (128 - len)) - 1
    };
    let host_bits = if max == 32 {
        host_bits & (u128::MAX << 96)
    } else {
        host_bits
    };
    if bits & host_bits != 0 {
        return Err(format!(
            "has host bits set: did you mean the network address with /{len}?"
        ));
    }
    Ok(())
}

/// Cargo binary names.
pub fn check_binary(s: &str) -> Result<(), String> {
    if !s.is_empty() && all(s, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        Ok(())
    } else {
        Err("must be a cargo binary name (letters, digits, `-`, `_`)".into())
    }
}

/// Environment variable names; Lambda reserves the `AWS_` prefix and a few runtime names.
pub fn check_env_var(s: &str) -> Result<(), String> {
    const RESERVED: &[&str] = &[
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "TZ",
    ];
    let mut chars = s.chars();
    if !matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        || !all(s, |c| c.is_ascii_alphanumeric() || c == '_')
    {
        Err("must start with a letter or `_` and hold only letters, digits and `_`".into())
    } else if s.starts_with("AWS_") || RESERVED.contains(&s) {
        Err("is reserved by the Lambda runtime".into())
    } else {
        Ok(())
    }
}

/// ALB path patterns: start with `/`, at most 128 characters of the allowed set.
pub fn check_path_pattern(s: &str) -> Result<(), String> {
    const OK: &str = "_-.$/~\"'@:+&*?";
    if !s.starts_with('/') {
        Err("must start with `/`".into())
    } else if s.len() > 128 {
        Err("is longer than the 128 characters an ALB path pattern allows".into())
    } else if let Some(c) = s
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !OK.contains(*c))
    {
        Err(format!(
            "contains `{c}`, which ALB path patterns do not allow"
        ))
    } else {
        Ok(())
    }
}

/// ALB host patterns: labels of letters, digits, `-`, wildcards; at least one dot.
pub fn check_host_pattern(s: &str) -> Result<(), String> {
    if s.len() > 128 {
        Err("is longer than the 128 characters an ALB host pattern allows".into())
    } else if let Some(c) = s
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !"-.*?".contains(*c))
    {
        Err(format!(
            "contains `{c}`, which ALB host patterns do not allow"
        ))
    } else if !s.contains('.') || s.starts_with('.') || s.ends_with('.') || s.contains("..") {
        Err("is not a host name such as `api.example.com`".into())
    } else {
        Ok(())
    }
}

/// A lowercase DNS label: 1 to 63 letters, digits and `-`, not at either end.
fn is_dns_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && !l.starts_with('-')
        && !l.ends_with('-')
        && all(l, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
        })
}

/// `alb.preview_domain`: a DNS name of at least two labels, lowercase letters, digits and `-`,
/// short enough that `<env>.` of the longest env still makes a host name ALB accepts.
pub fn check_preview_domain(s: &str) -> Result<(), String> {
    if s.len() + ENV_MAX + 1 > 128 {
        Err(format!(
            "is longer than {} characters: `<env>.{s}` would pass the 128 an ALB host condition allows",
            127 - ENV_MAX
        ))
    } else if !s.contains('.') || !s.split('.').all(is_dns_label) {
        Err("is not a domain such as `preview.example.com` (lowercase labels of letters, digits and `-`)".into())
    } else {
        Ok(())
    }
}

/// ACM's limit on a certificate's first domain name (RequestCertificate, `DomainName`).
pub const CERTIFICATE_DOMAIN_MAX: usize = 64;

/// `alb.domain`: lowercase DNS labels, at most 64 characters (the certificate's domain name).
pub fn check_domain(s: &str) -> Result<(), String> {
    if s.len() > CERTIFICATE_DOMAIN_MAX {
        Err(format!(
            "is longer than {CERTIFICATE_DOMAIN_MAX} characters, the most ACM takes as a certificate's domain name"
        ))
    } else if !s.contains('.') || !s.split('.').all(is_dns_label) {
        Err("is not a domain such as `api.example.com` (lowercase labels of letters, digits and `-`)".into())
    } else {
        Ok(())
    }
}

/// The name after `ssm:`: an SSM parameter name (letters, digits, `_.-/`; a hierarchy starts
/// with `/`, has at most 15 levels; no `aws`/`ssm` prefix; at most 1011 characters).
pub fn check_ssm_parameter(s: &str) -> Result<(), String> {
    let bare = s.trim_start_matches('/').to_ascii_lowercase();
    if s.is_empty() || s.len() > 1011 {
        Err("is not an SSM parameter name of 1 to 1011 characters".into())
    } else if !all(s, |c| c.is_ascii_alphanumeric() || "_.-/".contains(c)) {
        Err("has characters an SSM parameter name cannot have (letters, digits, `_`, `.`, `-`, `/`)".into())
    } else if bare.starts_with("aws") || bare.starts_with("ssm") {
        Err("starts with `aws` or `ssm`, prefixes SSM reserves".into())
    } else if s.contains("//") || s.ends_with('/') {
        Err("has an empty level: a parameter path is `/level/name`".into())
    } else if s.matches('/').count() > 15 {
        Err("has more than 15 levels, the most SSM allows".into())
    } else {
        Ok(())
    }
}

/// The name after `secretsmanager:`: 1 to 512 of `A-Za-z0-9/_+=.@-`.
pub fn check_secret_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 512 {
        Err("is not a Secrets Manager name of 1 to 512 characters".into())
    } else if !all(s, |c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c)) {
        Err("has characters a Secrets Manager name cannot have (letters, digits, `/_+=.@-`)".into())
    } else if s.starts_with("arn:") {
        Err("is an ARN: give the secret's name".into())
    } else {
        Ok(())
    }
}

/// Route 53 hosted zone ids: `Z` and uppercase letters or digits.
pub fn check_hosted_zone_id(s: &str) -> Result<(), String> {
    if s.starts_with('Z')
        && s.len() <= 32
        && all(s, |c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        Ok(())
    } else {
        Err("is not a Route 53 hosted zone id such as `Z0123456789ABCDEFGHIJ`".into())
    }
}

/// DynamoDB attribute names: 1..=255 characters.
pub fn check_attribute(s: &str) -> Result<(), String> {
    if (1..=255).contains(&s.len()) {
        Ok(())
    } else {
        Err("must be 1 to 255 characters".into())
    }
}

/// DynamoDB index names: 3..=255 of letters, digits, `_`, `-`, `.`.
pub fn check_index_name(s: &str) -> Result<(), String> {
    if (3..=255).contains(&s.len()) && all(s, |c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
        Ok(())
    } else {
        Err("must be 3 to 255 letters, digits, `_`, `-` or `.`".into())
    }
}

/// CloudFormation logical ids: alphanumeric, at most 255 characters.
pub fn check_logical_id(s: &str) -> Result<(), String> {
    if (1..=255).contains(&s.len()) && all(s, |c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err("must be 1 to 255 letters and digits (CloudFormation logical id)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids() {
        assert_eq!(logical_id("api"), "Api");
        assert_eq!(logical_id("notes-api"), "NotesApi");
        assert_eq!(logical_id("notes_api"), "NotesApi");
        assert_eq!(logical_id("v2-x"), "V2X");
    }

    #[test]
    fn names() {
        assert!(check_app("notes").is_ok());
        assert!(check_app("Notes").is_err());
        assert!(check_app("a-").is_err());
        assert!(check_app(&"a".repeat(32)).is_err());
        assert!(check_env("pr-42").is_ok());
        assert!(check_env("42").is_err());
        assert_eq!(table_env_var("user-events"), "TABLE_USER_EVENTS");
        assert!(check_function_name("a", "b", &"c".repeat(61)).is_err());
        assert!(check_function_name("a", "b", &"c".repeat(60)).is_ok());
        assert!(check_function_name("notes", "dev", "api").is_ok());
    }

    #[test]
    fn cidrs() {
        for ok in [
            "0.0.0.0/0",
            "10.0.0.0/8",
            "203.0.113.7/32",
            "::/0",
            "2001:db8::/32",
        ] {
            assert!(check_cidr(ok).is_ok(), "{ok}");
        }
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0",
            "10.0.0.0/33",
            "x/1",
            "2001:db8::1/32",
            "::/129",
        ] {
            assert!(check_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patterns() {
        assert!(check_path_pattern("/notes*").is_ok());
        assert!(check_path_pattern("notes").is_err());
        assert!(check_path_pattern("/a b").is_err());
        assert!(check_host_pattern("api.example.com").is_ok());
        assert!(check_host_pattern("*.example.com").is_ok());
        assert!(check_host_pattern("localhost").is_err());
        assert!(
            check_certificate_arn("arn:aws:acm:eu-west-1:123456789012:certificate/abc").is_ok()
        );
        assert!(check_certificate_arn("arn:aws:iam::123456789012:role/x").is_err());
        assert!(check_vpc_id("vpc-0123").is_ok());
        assert!(check_vpc_id("vpc-XYZ").is_err());
        assert!(check_region("eu-west-1").is_ok());
        assert!(check_region("us-gov-west-1").is_ok());
        assert!(check_region("europe").is_err());
        assert!(check_env_var("AWS_REGION").is_err());
        assert!(check_env_var("RUST_LOG").is_ok());
    }
}
