//! `--prices live`: a region's prices from the Price List Query API (`pricing:GetProducts`,
//! served from us-east-1), cached for a week, instead of the committed table. Which product
//! answers each price is [`WANTED`]; reading a product's on-demand price is pure
//! ([`on_demand_usd`], [`usage_matches`]).

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_sdk_pricing::types::{Filter, FilterType};
use serde_json::Value;

use super::Aws;
use crate::cost::prices::{self, Prices, Source};
use crate::exit::Error;

/// How long fetched prices are reused.
const CACHE_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// Each price: the service, its usage type (without the region prefix), and how many of the
/// product's units the table's price is for.
const WANTED: &[(&str, &str, f64)] = &[
    ("AWSELB", "LoadBalancerUsage", 1.0),
    ("AWSELB", "LCUUsage", 1.0),
    ("AmazonDynamoDB", "WriteCapacityUnit-Hrs", 1.0),
    ("AmazonDynamoDB", "ReadCapacityUnit-Hrs", 1.0),
    ("AmazonDynamoDB", "WriteRequestUnits", 1e6),
    ("AmazonDynamoDB", "ReadRequestUnits", 1e6),
    ("AmazonDynamoDB", "TimedStorage-ByteHrs", 1.0),
    ("AmazonDynamoDB", "TimedPITRStorage-ByteHrs", 1.0),
    ("AWSLambda", "Request", 1e6),
    ("AWSLambda", "Lambda-GB-Second", 1.0),
    ("AWSLambda", "Lambda-GB-Second-ARM", 1.0),
    ("AmazonCloudWatch", "CW:AlarmMonitorUsage", 1.0),
    ("AmazonCloudWatch", "DataProcessing-Bytes", 1.0),
    ("AmazonCloudWatch", "TimedStorage-ByteHrs", 1.0),
];

/// The prices of `region` from `source`: the committed table (`None` when it lacks the
/// region), or live (cached), failing with what the API said.
pub async fn resolve(aws: &Aws, region: &str, source: Source) -> Result<Option<Prices>, Error> {
    match source {
        Source::Table => Ok(prices::of(region).cloned()),
        Source::Live => live(aws, region).await.map(Some),
    }
}

/// A region's prices from the cache when fresh, else from GetProducts (then cached).
async fn live(aws: &Aws, region: &str) -> Result<Prices, Error> {
    let cache = cache_path(region);
    if let Some(cached) = read_cache(&cache) {
        return Ok(cached);
    }
    let client = pricing_client(aws);
    let mut found = Vec::new();
    for service in ["AWSELB", "AmazonDynamoDB", "AWSLambda", "AmazonCloudWatch"] {
        let products = products(&client, service, region).await?;
        for (svc, usage, per) in WANTED.iter().filter(|(s, _, _)| *s == service) {
            let price = products
                .iter()
                .filter(|p| usage_matches(p["product"]["attributes"]["usagetype"].as_str(), usage))
                .find_map(on_demand_usd)
                .ok_or_else(|| {
                    Error::failed(format!(
                        "the Price List API has no {svc} price `{usage}` for {region}"
                    ))
                })?;
            found.push(price * per);
        }
    }
    let [
        alb_hour,
        alb_lcu_hour,
        wcu,
        rcu,
        write_m,
        read_m,
        storage,
        pitr,
        request_m,
        x86,
        arm,
        alarm,
        logs,
        logs_storage,
    ] = <[f64; 14]>::try_from(found).expect("one price per WANTED entry");
    let fetched = Prices {
        region: Cow::Owned(region.to_string()),
        as_of: Cow::Owned(
            crate::converge::ephemeral::format_time(SystemTime::now())[..10].to_string(),
        ),
        alb_hour,
        alb_lcu_hour,
        dynamodb_wcu_hour: wcu,
        dynamodb_rcu_hour: rcu,
        dynamodb_write_million: write_m,
        dynamodb_read_million: read_m,
        dynamodb_storage_gb_month: storage,
        dynamodb_pitr_gb_month: pitr,
        lambda_request_million: request_m,
        lambda_x86_gb_second: x86,
        lambda_arm_gb_second: arm,
        alarm_month: alarm,
        logs_ingest_gb: logs,
        logs_storage_gb_month: logs_storage,
    };
    write_cache(&cache, &fetched);
    Ok(fetched)
}

/// GetProducts for one service in one region, every page, each product as JSON.
async fn products(
    client: &aws_sdk_pricing::Client,
    service: &str,
    region: &str,
) -> Result<Vec<Value>, Error> {
    let filter = Filter::builder()
        .r#type(FilterType::TermMatch)
        .field("regionCode")
        .value(region)
        .build()
        .expect("every required field is set");
    let mut pages = client
        .get_products()
        .service_code(service)
        .filters(filter)
        .into_paginator()
        .send();
    let mut products = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            let e = aws_sdk_pricing::error::DisplayErrorContext(e);
            Error::failed(format!(
                "cannot read {service} prices from the Price List API: {e}"
            ))
        })?;
        products.extend(
            page.price_list()
                .iter()
                .filter_map(|p| serde_json::from_str::<Value>(p).ok()),
        );
    }
    Ok(products)
}

/// Whether a product's usage type is `wanted`, with or without its region prefix (`USE1-`,
/// `EUW1-`, ...): `USE1-IA-ReadCapacityUnit-Hrs` (another table class) is not
/// `ReadCapacityUnit-Hrs`.
pub fn usage_matches(usagetype: Option<&str>, wanted: &str) -> bool {
    let Some(usagetype) = usagetype else {
        return false;
    };
    let rest = usagetype
        .split_once('-')
        // A region prefix is capitals and digits (`USE1`, `EUW1`, `EU`); `IA` marks DynamoDB's
        // Standard-IA table class, never a region.
        .filter(|(prefix, _)| {
            *prefix != "IA"
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        })
        .map_or(usagetype, |(_, rest)| rest);
    rest == wanted
}

/// A product's on-demand price per unit in USD: of its first tier that is not free (tiers
/// ordered by where they begin).
pub fn on_demand_usd(product: &Value) -> Option<f64> {
    let mut tiers: Vec<(f64, f64)> = product["terms"]["OnDemand"]
        .as_object()?
        .values()
        .filter_map(|term| term["priceDimensions"].as_object())
        .flat_map(|dims| dims.values())
        .filter_map(|d| {
            let begin = d["beginRange"]
                .as_str()
                .unwrap_or("0")
                .parse()
                .unwrap_or(0.0);
            let usd = d["pricePerUnit"]["USD"].as_str()?.parse().ok()?;
            Some((begin, usd))
        })
        .collect();
    tiers.sort_by(|a, b| a.0.total_cmp(&b.0));
    tiers.into_iter().map(|(_, usd)| usd).find(|usd| *usd > 0.0)
}

/// The Price List Query API's client: its endpoints are in us-east-1 (and two other regions),
/// whichever region the stack is in.
fn pricing_client(aws: &Aws) -> aws_sdk_pricing::Client {
    let config = aws_sdk_pricing::config::Builder::from(&aws.config)
        .region(aws_sdk_pricing::config::Region::new("us-east-1"))
        .build();
    aws_sdk_pricing::Client::from_conf(config)
}

/// `$XDG_CACHE_HOME/deployer/prices-<region>.json` (else `~/.cache/...`).
fn cache_path(region: &str) -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("deployer").join(format!("prices-{region}.json"))
}

/// Cached prices written less than [`CACHE_FOR`] ago.
fn read_cache(path: &PathBuf) -> Option<Prices> {
    let age = std::fs::metadata(path)
        .ok()?
        .modified()
        .ok()?
        .elapsed()
        .ok()?;
    if age > CACHE_FOR {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Caches prices; a cache that cannot be written only costs the next run a fetch.
fn write_cache(path: &PathBuf, prices: &Prices) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(path, serde_json::to_vec_pretty(prices).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_types_match_with_or_without_their_region_prefix() {
        let cases = [
            (
                Some("USE1-ReadCapacityUnit-Hrs"),
                "ReadCapacityUnit-Hrs",
                true,
            ),
            (Some("ReadCapacityUnit-Hrs"), "ReadCapacityUnit-Hrs", true),
            (
                Some("EUW1-IA-ReadCapacityUnit-Hrs"),
                "ReadCapacityUnit-Hrs",
                false,
            ),
            (Some("EU-Lambda-GB-Second"), "Lambda-GB-Second", true),
            (
                Some("IA-ReadCapacityUnit-Hrs"),
                "ReadCapacityUnit-Hrs",
                false,
            ),
            (
                Some("USE1-Lambda-Provisioned-Concurrency"),
                "Request",
                false,
            ),
            (Some("USE1-Lambda-GB-Second-ARM"), "Lambda-GB-Second", false),
            (Some("Lambda-GB-Second"), "Lambda-GB-Second", true),
            (None, "Request", false),
        ];
        for (usagetype, wanted, matches) in cases {
            assert_eq!(
                usage_matches(usagetype, wanted),
                matches,
                "{usagetype:?} {wanted}"
            );
        }
    }

    #[test]
    fn the_first_paid_tier_is_the_price() {
        // Lambda's duration: the first 6 billion GB-seconds at the highest price; a free tier
        // (DynamoDB's first 25 GB) beginning at 0 is skipped.
        let tiered = json!({ "terms": { "OnDemand": { "X.Y": { "priceDimensions": {
            "X.Y.2": { "beginRange": "6000000000", "pricePerUnit": { "USD": "0.0000150000" } },
            "X.Y.1": { "beginRange": "0", "pricePerUnit": { "USD": "0.0000166667" } },
        }}}}});
        assert_eq!(on_demand_usd(&tiered), Some(0.000_016_666_7));
        let free_first = json!({ "terms": { "OnDemand": { "X.Y": { "priceDimensions": {
            "X.Y.1": { "beginRange": "0", "pricePerUnit": { "USD": "0.0000000000" } },
            "X.Y.2": { "beginRange": "25", "pricePerUnit": { "USD": "0.2500000000" } },
        }}}}});
        assert_eq!(on_demand_usd(&free_first), Some(0.25));
        assert_eq!(on_demand_usd(&json!({})), None);
    }
}
