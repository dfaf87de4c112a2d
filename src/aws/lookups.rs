//! [`Lookups`] over AWS: Route 53, ACM, SSM, Secrets Manager and KMS through [`super::query`],
//! and writing a secret for `deployer secret set`.

use serde_json::{Value, json};

use super::AwsCloud;
use super::query::{Service, first_text};
use crate::converge::cloud::CloudError;
use crate::converge::resolve::{HostedZone, Lookups, SecretInfo};
use crate::spec::SecretStore;

/// The zones of a Route 53 answer (`<HostedZone>` elements, anywhere).
fn hosted_zones(xml: &str) -> Vec<HostedZone> {
    xml.split("<HostedZone>")
        .skip(1)
        .filter_map(|chunk| {
            let inner = chunk.split("</HostedZone>").next()?;
            let zone = format!("<HostedZone>{inner}</HostedZone>");
            let id = first_text(&zone, "Id")?;
            Some(HostedZone {
                id: id.trim_start_matches("/hostedzone/").to_string(),
                name: first_text(&zone, "Name")?.trim_end_matches('.').to_string(),
                private: first_text(&zone, "PrivateZone").as_deref() == Some("true"),
            })
        })
        .collect()
}

impl Lookups for AwsCloud<'_> {
    async fn hosted_zones_from(&self, name: &str) -> Result<Vec<HostedZone>, CloudError> {
        let path = format!("/2013-04-01/hostedzonesbyname?dnsname={name}&maxitems=10");
        let xml = self
            .aws
            .query
            .get(Service::Route53, "ListHostedZonesByName", &path)
            .await?;
        Ok(hosted_zones(&xml))
    }

    async fn hosted_zone(&self, id: &str) -> Result<HostedZone, CloudError> {
        let path = format!("/2013-04-01/hostedzone/{id}");
        let xml = self
            .aws
            .query
            .get(Service::Route53, "GetHostedZone", &path)
            .await?;
        hosted_zones(&xml)
            .pop()
            .ok_or_else(|| CloudError::new("NoSuchHostedZone", format!("no hosted zone {id}")))
    }

    async fn certificate_names(&self, arn: &str) -> Result<Vec<String>, CloudError> {
        let input = json!({ "CertificateArn": arn });
        let out = self
            .aws
            .query
            .call_json(Service::Acm, "DescribeCertificate", &input)
            .await?;
        let certificate = &out["Certificate"];
        let mut names: Vec<String> = strings(&certificate["SubjectAlternativeNames"]);
        if let Some(name) = certificate["DomainName"].as_str() {
            names.insert(0, name.to_string());
            names.dedup();
        }
        Ok(names)
    }

    async fn secret(
        &self,
        store: SecretStore,
        name: &str,
    ) -> Result<Option<SecretInfo>, CloudError> {
        match store {
            SecretStore::Ssm => {
                let input = json!({ "ParameterFilters": [{ "Key": "Name", "Option": "Equals", "Values": [name] }] });
                let out = self
                    .aws
                    .query
                    .call_json(Service::Ssm, "DescribeParameters", &input)
                    .await?;
                Ok(out["Parameters"]
                    .as_array()
                    .and_then(|p| p.first())
                    .map(|p| SecretInfo {
                        version: p["Version"]
                            .as_i64()
                            .map(|v| v.to_string())
                            .unwrap_or_default(),
                        last_changed: p["LastModifiedDate"].as_f64(),
                        kms_key: p["KeyId"].as_str().map(str::to_string),
                    }))
            }
            SecretStore::SecretsManager => {
                let input = json!({ "SecretId": name });
                let out = match self
                    .aws
                    .query
                    .call_json(Service::SecretsManager, "DescribeSecret", &input)
                    .await
                {
                    Err(e) if e.code.as_deref() == Some("ResourceNotFoundException") => {
                        return Ok(None);
                    }
                    other => other?,
                };
                let current = out["VersionIdsToStages"].as_object().and_then(|versions| {
                    versions
                        .iter()
                        .find(|(_, stages)| strings(stages).iter().any(|s| s == "AWSCURRENT"))
                        .map(|(id, _)| id.clone())
                });
                Ok(Some(SecretInfo {
                    version: current.unwrap_or_default(),
                    last_changed: out["LastChangedDate"].as_f64(),
                    kms_key: out["KmsKeyId"].as_str().map(str::to_string),
                }))
            }
        }
    }

    async fn key_arn(&self, key: &str) -> Result<String, CloudError> {
        let out = self
            .aws
            .query
            .call_json(Service::Kms, "DescribeKey", &json!({ "KeyId": key }))
            .await?;
        out["KeyMetadata"]["Arn"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                CloudError::new(
                    "InvalidResponse",
                    format!("DescribeKey gave no ARN for {key}"),
                )
            })
    }
}

impl AwsCloud<'_> {
    /// Writes `value` as the secret `name` (an SSM `SecureString`, overwritten; a Secrets
    /// Manager secret's new current version, the secret made when missing); its new version.
    pub async fn put_secret(
        &self,
        store: SecretStore,
        name: &str,
        value: &str,
    ) -> Result<String, CloudError> {
        let query = &self.aws.query;
        match store {
            SecretStore::Ssm => {
                let input = json!({ "Name": name, "Value": value, "Type": "SecureString", "Overwrite": true });
                let out = query
                    .call_json(Service::Ssm, "PutParameter", &input)
                    .await?;
                Ok(out["Version"]
                    .as_i64()
                    .map(|v| v.to_string())
                    .unwrap_or_default())
            }
            SecretStore::SecretsManager => {
                let input = json!({ "SecretId": name, "SecretString": value });
                let out = match query
                    .call_json(Service::SecretsManager, "PutSecretValue", &input)
                    .await
                {
                    Err(e) if e.code.as_deref() == Some("ResourceNotFoundException") => {
                        let input = json!({ "Name": name, "SecretString": value });
                        query
                            .call_json(Service::SecretsManager, "CreateSecret", &input)
                            .await?
                    }
                    other => other?,
                };
                Ok(out["VersionId"].as_str().unwrap_or_default().to_string())
            }
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_read_from_route53_answers() {
        let xml = r#"<?xml version="1.0"?>
<ListHostedZonesByNameResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">
  <HostedZones>
    <HostedZone><Id>/hostedzone/Z1</Id><Name>example.com.</Name><CallerReference>a</CallerReference>
      <Config><PrivateZone>false</PrivateZone></Config></HostedZone>
    <HostedZone><Id>/hostedzone/Z2</Id><Name>example.com.</Name><CallerReference>b</CallerReference>
      <Config><PrivateZone>true</PrivateZone></Config></HostedZone>
  </HostedZones><IsTruncated>false</IsTruncated><MaxItems>10</MaxItems>
</ListHostedZonesByNameResponse>"#;
        let zones = hosted_zones(xml);
        assert_eq!(zones.len(), 2);
        assert_eq!(
            zones[0],
            HostedZone {
                id: "Z1".into(),
                name: "example.com".into(),
                private: false
            }
        );
        assert!(zones[1].private);
    }
}
