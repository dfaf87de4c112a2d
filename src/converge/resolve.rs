//! What `up` learns from AWS before rendering: the hosted zone of `alb.domain`, whether a
//! given certificate covers it, and where each secret is and which key encrypts it. The
//! decisions are plain functions; the lookups go through [`Lookups`].

use crate::exit::Error;
use crate::spec::{SecretStore, Spec};

use super::cloud::CloudError;

/// A Route 53 hosted zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedZone {
    /// Its id, without the `/hostedzone/` prefix.
    pub id: String,
    /// Its name, without the final dot.
    pub name: String,
    /// A private zone (answers only inside VPCs).
    pub private: bool,
}

/// A secret as its service describes it: never its value.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretInfo {
    /// The parameter's version, or the secret's current version id.
    pub version: String,
    /// When it last changed (seconds since the epoch), when known.
    pub last_changed: Option<f64>,
    /// The KMS key as the service names it (`alias/aws/ssm`, a key id or ARN), when it says.
    pub kms_key: Option<String>,
}

/// The lookups `up` and `secret ls` make.
#[allow(async_fn_in_trait)]
pub trait Lookups {
    /// The hosted zones whose name is `name` or sorts after it (ListHostedZonesByName).
    async fn hosted_zones_from(&self, name: &str) -> Result<Vec<HostedZone>, CloudError>;
    /// One hosted zone (GetHostedZone).
    async fn hosted_zone(&self, id: &str) -> Result<HostedZone, CloudError>;
    /// The names a certificate covers (ACM DescribeCertificate).
    async fn certificate_names(&self, arn: &str) -> Result<Vec<String>, CloudError>;
    /// A parameter or secret (`None`: it does not exist).
    async fn secret(
        &self,
        store: SecretStore,
        name: &str,
    ) -> Result<Option<SecretInfo>, CloudError>;
    /// The ARN of a KMS key named by id, ARN or alias (KMS DescribeKey).
    async fn key_arn(&self, key: &str) -> Result<String, CloudError>;
}

/// The public zone `domain` belongs to: the one with the longest name that is `domain` or a
/// parent of it. Several public zones of that name, or none, is an error.
pub fn zone_for(domain: &str, zones: &[HostedZone]) -> Result<String, String> {
    let candidates: Vec<&HostedZone> = zones
        .iter()
        .filter(|z| !z.private && is_within(domain, &z.name))
        .collect();
    let longest = candidates.iter().map(|z| z.name.len()).max();
    let best: Vec<&&HostedZone> = candidates
        .iter()
        .filter(|z| Some(z.name.len()) == longest)
        .collect();
    match best.as_slice() {
        [zone] => Ok(zone.id.clone()),
        [] => Err(format!(
            "no public Route 53 hosted zone holds `{domain}`: create one for it or a parent domain, or set `alb.hosted_zone_id`"
        )),
        several => {
            let ids: Vec<&str> = several.iter().map(|z| z.id.as_str()).collect();
            Err(format!(
                "several public hosted zones are named `{}` ({}): set `alb.hosted_zone_id` to the one to use",
                several[0].name,
                ids.join(", ")
            ))
        }
    }
}

/// Whether `name` is `zone` or a name under it.
pub fn is_within(name: &str, zone: &str) -> bool {
    let zone = zone.trim_end_matches('.');
    name == zone || name.ends_with(&format!(".{zone}"))
}

/// Whether a certificate for `names` covers `domain` (a wildcard covers one label).
pub fn covers(names: &[String], domain: &str) -> bool {
    names.iter().any(|n| match n.strip_prefix("*.") {
        Some(parent) => domain
            .split_once('.')
            .is_some_and(|(_, rest)| rest == parent),
        None => n == domain,
    })
}

/// The ARN of a key the function must be allowed to decrypt with, or `None` for the service's
/// AWS managed key (its key policy already lets the service decrypt for the account).
pub fn customer_key(kms_key: Option<&str>) -> Option<&str> {
    let key = kms_key?;
    let managed = ["alias/aws/ssm", "alias/aws/secretsmanager"];
    match managed
        .iter()
        .any(|m| key == *m || key.ends_with(&format!(":{m}")))
    {
        true => None,
        false => Some(key),
    }
}

/// The spec with what AWS says filled in: `alb.hosted_zone_id` of the env's domain, the
/// customer key of each secret. Fails before any change when the zone, the certificate or a
/// secret is not right.
pub async fn resolve<L: Lookups>(lookups: &L, spec: &Spec, shared: bool) -> Result<Spec, Error> {
    let mut resolved = spec.clone();
    if let (Some(domain), false) = (spec.domain_name(), shared) {
        let alb = resolved.alb.as_mut().expect("a domain is in `alb`");
        match &alb.hosted_zone_id {
            Some(id) => {
                let zone = lookups
                    .hosted_zone(id)
                    .await
                    .map_err(|e| lookup_failed("hosted zone", e))?;
                if !is_within(&domain, &zone.name) {
                    return Err(Error::usage(format!(
                        "`{domain}` is not in hosted zone {id} (`{}`): fix `alb.domain` or `alb.hosted_zone_id`",
                        zone.name
                    )));
                }
            }
            None => {
                let zones = zones_holding(lookups, &domain).await?;
                alb.hosted_zone_id = Some(zone_for(&domain, &zones).map_err(Error::usage)?);
            }
        }
        if let Some(arn) = &alb.certificate_arn {
            let names = lookups
                .certificate_names(arn)
                .await
                .map_err(|e| lookup_failed("certificate", e))?;
            if !covers(&names, &domain) {
                return Err(Error::usage(format!(
                    "certificate {arn} is for {} and does not cover `{domain}`: drop `certificate_arn` (the stack then makes one) or give one that covers it",
                    names.join(", ")
                )));
            }
        }
    }
    let mut missing = Vec::new();
    for found in look_up_secrets(lookups, spec).await? {
        let Some(info) = &found.info else {
            missing.push(format!(
                "  {}.{}: {}",
                found.function, found.name, found.reference
            ));
            continue;
        };
        if let Some(key) = customer_key(info.kms_key.as_deref()) {
            let arn = lookups
                .key_arn(key)
                .await
                .map_err(|e| lookup_failed("KMS key", e))?;
            let function = resolved.functions.get_mut(&found.function);
            let secret = function.and_then(|f| f.secrets.get_mut(&found.name));
            secret.expect("found in this spec").kms_key_arn = Some(arn);
        }
    }
    match missing.is_empty() {
        true => Ok(resolved),
        false => Err(Error::usage(format!(
            "secrets the spec names do not exist, so nothing was changed:\n{}\nset each with `deployer secret set <function> <NAME>`",
            missing.join("\n")
        ))),
    }
}

/// One secret the spec names, as its service describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundSecret {
    /// The function whose `secrets` name it.
    pub function: String,
    /// Its variable name there.
    pub name: String,
    /// Where it is kept, with its full name: `ssm:/notes/prod/db-password`.
    pub reference: String,
    /// What the service says of it; `None`: it does not exist.
    pub info: Option<SecretInfo>,
}

/// Every secret of the spec, in spec order, looked up where it is kept (`up`, `secret ls`).
pub async fn look_up_secrets<L: Lookups>(
    lookups: &L,
    spec: &Spec,
) -> Result<Vec<FoundSecret>, Error> {
    let mut found = Vec::new();
    for (function, f) in &spec.functions {
        for (name, secret) in &f.secrets {
            let full_name = secret.full_name(&spec.app, &spec.env);
            let info = lookups
                .secret(secret.store, &full_name)
                .await
                .map_err(|e| lookup_failed(&format!("secret {full_name}"), e))?;
            found.push(FoundSecret {
                function: function.clone(),
                name: name.clone(),
                reference: secret.reference(&spec.app, &spec.env),
                info,
            });
        }
    }
    Ok(found)
}

/// Every zone named `domain` or one of its parents (ListHostedZonesByName from each name).
async fn zones_holding<L: Lookups>(lookups: &L, domain: &str) -> Result<Vec<HostedZone>, Error> {
    let mut zones = Vec::new();
    let mut name = domain;
    while let Some((_, parent)) = name.split_once('.') {
        let found = lookups
            .hosted_zones_from(name)
            .await
            .map_err(|e| lookup_failed("hosted zones", e))?;
        zones.extend(found.into_iter().filter(|z| z.name == name));
        name = parent;
    }
    Ok(zones)
}

fn lookup_failed(what: &str, e: CloudError) -> Error {
    super::engine::cloud_failure(&format!("cannot look up the {what}"), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(id: &str, name: &str, private: bool) -> HostedZone {
        HostedZone {
            id: id.into(),
            name: name.into(),
            private,
        }
    }

    #[test]
    fn the_closest_public_zone_holds_the_domain() {
        let zones = [
            zone("Z1", "example.com", false),
            zone("Z2", "api.example.com", true),
            zone("Z3", "notexample.com", false),
        ];
        assert_eq!(zone_for("api.example.com", &zones).unwrap(), "Z1");
        let nested = [
            zone("Z1", "example.com", false),
            zone("Z4", "prod.example.com", false),
        ];
        assert_eq!(zone_for("api.prod.example.com", &nested).unwrap(), "Z4");
        assert!(
            zone_for("api.other.org", &zones)
                .unwrap_err()
                .contains("no public")
        );
        let twins = [
            zone("Z1", "example.com", false),
            zone("Z5", "example.com", false),
        ];
        let err = zone_for("api.example.com", &twins).unwrap_err();
        assert!(
            err.contains("Z1, Z5") && err.contains("hosted_zone_id"),
            "{err}"
        );
    }

    #[test]
    fn certificates_cover_exact_names_and_one_wildcard_label() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(covers(&names(&["api.example.com"]), "api.example.com"));
        assert!(covers(
            &names(&["x.org", "*.example.com"]),
            "api.example.com"
        ));
        assert!(!covers(&names(&["*.example.com"]), "a.b.example.com"));
        assert!(!covers(&names(&["*.example.com"]), "example.com"));
        assert!(!covers(&names(&["www.example.com"]), "api.example.com"));
    }

    #[test]
    fn only_customer_keys_need_a_statement() {
        assert_eq!(customer_key(None), None);
        assert_eq!(customer_key(Some("alias/aws/ssm")), None);
        assert_eq!(
            customer_key(Some(
                "arn:aws:kms:us-east-1:123456789012:alias/aws/secretsmanager"
            )),
            None
        );
        assert_eq!(customer_key(Some("alias/notes")), Some("alias/notes"));
        assert_eq!(customer_key(Some("1234abcd-12ab")), Some("1234abcd-12ab"));
    }
}
