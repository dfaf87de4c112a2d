//! What a stack costs a month before anyone uses it, and what using it costs: from the rendered
//! (or deployed) template, the tables' current sizes and a price table. Pure: the caller reads
//! the template, the sizes and how many envs share a load balancer.
//!
//! Fixed: load balancer hours (or an attached env's share of the shared one), provisioned
//! capacity of tables and their indexes, table storage and point-in-time recovery at the
//! tables' current size, alarms. Usage (per million requests): Lambda at each function's memory
//! and architecture, DynamoDB on-demand reads and writes, the load balancer's LCU-hours at a new
//! connection per request, 1 KB of logs per request ingested and kept.

pub mod prices;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

pub use prices::Prices;

/// Hours in a month, as AWS's pricing examples count them.
pub const HOURS_PER_MONTH: f64 = 730.0;
/// Lambda duration assumed for the per-million price: 100 ms per request.
pub const REQUEST_SECONDS: f64 = 0.1;
/// Log lines assumed per request for the per-million price: 1 KB.
pub const LOG_BYTES_PER_REQUEST: f64 = 1024.0;
/// New connections one LCU takes a second (Elastic Load Balancing pricing, "LCU details").
pub const NEW_CONNECTIONS_PER_LCU_SECOND: f64 = 25.0;

/// One line of the fixed cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// The resource.
    pub logical_id: String,
    /// What is billed.
    pub what: String,
    /// USD a month.
    pub usd: f64,
}

/// A usage price: what a million requests cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    /// What is billed.
    pub what: String,
    /// USD per million.
    pub usd_per_million: f64,
}

/// A stack's monthly cost, and what a change adds or removes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthlyCost {
    /// The fixed cost of the stack as it would be, USD a month.
    pub fixed_usd: f64,
    /// What the change adds (negative: removes), USD a month.
    pub delta_usd: f64,
    /// The fixed cost, line by line.
    pub items: Vec<Item>,
    /// What using it costs.
    pub usage: Vec<Usage>,
    /// When the prices were read.
    pub prices_as_of: String,
}

/// What the template alone does not say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Current size of each table, by logical id, in bytes (none yet: 0).
    pub table_bytes: BTreeMap<String, u64>,
    /// How many envs share the load balancer an attached env uses (itself included).
    pub sharing: Option<u32>,
}

/// The fixed monthly cost of `template`, line by line.
pub fn fixed(template: &Value, facts: &Facts, prices: &Prices) -> Vec<Item> {
    let alb_month = prices.alb_hour * HOURS_PER_MONTH;
    let mut items = Vec::new();
    let Some(resources) = template["Resources"].as_object() else {
        return items;
    };
    let item = |id: &str, what: String, usd: f64| Item {
        logical_id: id.to_string(),
        what,
        usd,
    };
    for (id, r) in resources {
        let props = &r["Properties"];
        match r["Type"].as_str().unwrap_or_default() {
            "AWS::ElasticLoadBalancingV2::LoadBalancer" => items.push(item(
                id,
                format!(
                    "load balancer hours ({HOURS_PER_MONTH} h × ${})",
                    prices.alb_hour
                ),
                alb_month,
            )),
            "AWS::DynamoDB::Table" => items.extend(table(id, props, facts, prices)),
            "AWS::CloudWatch::Alarm" => items.push(item(id, "alarm".into(), prices.alarm_month)),
            // Listed so that it is seen to be counted: a standard topic has no monthly charge
            // (its deliveries are billed per notification).
            "AWS::SNS::Topic" => items.push(item(id, "topic (no monthly charge)".into(), 0.0)),
            _ => {}
        }
    }
    // An env on the shared load balancer: its share of the load balancer's hours.
    if let Some(n) = facts.sharing.filter(|_| attached(template)) {
        items.push(item(
            "SharedLoadBalancer",
            format!("share of the shared load balancer (1 of {n} envs)"),
            alb_month / f64::from(n.max(1)),
        ));
    }
    items
}

/// Whether `template` is an env attached to its app's shared load balancer.
fn attached(template: &Value) -> bool {
    template["Metadata"][crate::render::METADATA_KEY][crate::render::RULE_PRIORITIES].is_array()
}

/// A table's provisioned capacity (its own and its indexes'), storage and continuous backups.
fn table(id: &str, props: &Value, facts: &Facts, prices: &Prices) -> Vec<Item> {
    let mut items = Vec::new();
    let capacity = |throughput: &Value| {
        let units = |key: &str| throughput[key].as_f64().unwrap_or(0.0);
        (units("ReadCapacityUnits"), units("WriteCapacityUnits"))
    };
    let mut throughputs = vec![capacity(&props["ProvisionedThroughput"])];
    for index in props["GlobalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        throughputs.push(capacity(&index["ProvisionedThroughput"]));
    }
    let (read, write) = throughputs
        .iter()
        .fold((0.0, 0.0), |(r, w), (a, b)| (r + a, w + b));
    if read + write > 0.0 {
        items.push(Item {
            logical_id: id.to_string(),
            what: format!("provisioned capacity ({read} RCU, {write} WCU, indexes included)"),
            usd: (read * prices.dynamodb_rcu_hour + write * prices.dynamodb_wcu_hour)
                * HOURS_PER_MONTH,
        });
    }
    let gb = facts.table_bytes.get(id).copied().unwrap_or(0) as f64 / (1u64 << 30) as f64;
    if gb > 0.0 {
        items.push(Item {
            logical_id: id.to_string(),
            what: format!("storage ({gb:.3} GB)"),
            usd: gb * prices.dynamodb_storage_gb_month,
        });
        if props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] == true {
            items.push(Item {
                logical_id: id.to_string(),
                what: format!("point-in-time recovery ({gb:.3} GB)"),
                usd: gb * prices.dynamodb_pitr_gb_month,
            });
        }
    }
    items
}

/// What a million requests cost: through each function (at its memory and architecture, 100 ms
/// each), and each on-demand table's writes and reads.
pub fn usage(template: &Value, prices: &Prices) -> Vec<Usage> {
    let mut usage = Vec::new();
    let Some(resources) = template["Resources"].as_object() else {
        return usage;
    };
    for (id, r) in resources {
        let props = &r["Properties"];
        match r["Type"].as_str().unwrap_or_default() {
            "AWS::Lambda::Function" => {
                let memory = props["MemorySize"].as_f64().unwrap_or(128.0);
                let arm = props["Architectures"][0] == "arm64";
                let per_second = match arm {
                    true => prices.lambda_arm_gb_second,
                    false => prices.lambda_x86_gb_second,
                };
                let duration = 1e6 * REQUEST_SECONDS * memory / 1024.0 * per_second;
                usage.push(Usage {
                    what: format!(
                        "{id}: requests of 100 ms at {memory} MB {}",
                        if arm { "arm64" } else { "x86_64" }
                    ),
                    usd_per_million: prices.lambda_request_million + duration,
                });
            }
            "AWS::ElasticLoadBalancingV2::LoadBalancer" => {
                // At one new connection per request: 1e6 / 25 LCU-seconds.
                let lcu_hours = 1e6 / NEW_CONNECTIONS_PER_LCU_SECOND / 3600.0;
                usage.push(Usage {
                    what: format!("{id}: LCU-hours at a new connection per request"),
                    usd_per_million: lcu_hours * prices.alb_lcu_hour,
                });
            }
            "AWS::Logs::LogGroup" => {
                let gb = 1e6 * LOG_BYTES_PER_REQUEST / (1u64 << 30) as f64;
                let months = props["RetentionInDays"].as_f64().unwrap_or(30.0) / 30.0;
                usage.push(Usage {
                    what: format!(
                        "{id}: 1 KB logged per request, ingested and kept {} days",
                        props["RetentionInDays"].as_u64().unwrap_or(30)
                    ),
                    usd_per_million: gb
                        * (prices.logs_ingest_gb + prices.logs_storage_gb_month * months),
                });
            }
            "AWS::DynamoDB::Table" if props["BillingMode"] == "PAY_PER_REQUEST" => {
                usage.push(Usage {
                    what: format!("{id}: on-demand writes (1 KB)"),
                    usd_per_million: prices.dynamodb_write_million,
                });
                usage.push(Usage {
                    what: format!("{id}: on-demand reads (4 KB, strongly consistent)"),
                    usd_per_million: prices.dynamodb_read_million,
                });
            }
            _ => {}
        }
    }
    usage
}

/// The cost of `wanted`, and what it adds over `deployed` (none: a new stack, all of it).
pub fn estimate(
    wanted: &Value,
    deployed: Option<&Value>,
    facts: &Facts,
    prices: &Prices,
) -> MonthlyCost {
    let items = fixed(wanted, facts, prices);
    let fixed_usd = cents(items.iter().map(|i| i.usd).sum());
    let before = deployed.map_or(0.0, |d| {
        cents(fixed(d, facts, prices).iter().map(|i| i.usd).sum())
    });
    MonthlyCost {
        fixed_usd,
        delta_usd: cents(fixed_usd - before),
        items,
        usage: usage(wanted, prices),
        prices_as_of: prices.as_of.to_string(),
    }
}

/// The estimate in one line: the fixed cost, what the change adds, the largest items, and the
/// usage prices.
pub fn sentence(stack: &str, cost: &MonthlyCost) -> String {
    let mut items: Vec<&Item> = cost.items.iter().filter(|i| i.usd >= 0.005).collect();
    items.sort_by(|a, b| b.usd.total_cmp(&a.usd));
    let fixed: Vec<String> = items
        .iter()
        .take(4)
        .map(|i| format!("{} {} ${:.2}", i.logical_id, i.what, i.usd))
        .collect();
    let usage: Vec<String> = cost
        .usage
        .iter()
        .map(|u| format!("{} ${:.3}", u.what, u.usd_per_million))
        .collect();
    let mut line = format!(
        "{stack}: ${:.2} a month before use ({:+.2} with this change)",
        cost.fixed_usd, cost.delta_usd
    );
    if !fixed.is_empty() {
        line.push_str(&format!(": {}", fixed.join(", ")));
    }
    if !usage.is_empty() {
        line.push_str(&format!("; per million: {}", usage.join(", ")));
    }
    line.push_str(&format!(" (prices of {})", cost.prices_as_of));
    line
}

/// Rounded to cents, as a bill shows it (half a cent up: the nudge keeps binary fractions such
/// as 16.825 from rounding down).
fn cents(usd: f64) -> f64 {
    (usd * 100.0 + 1e-6).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn us_east_1() -> &'static Prices {
        prices::of("us-east-1").unwrap()
    }

    #[test]
    fn hand_computed_figures() {
        let prices = us_east_1();
        // One ALB: $0.0225 × 730 h = $16.425 → $16.43 (rounded to cents).
        // Two alarms: 2 × $0.10 = $0.20.
        // A provisioned table of 5 RCU / 5 WCU with an index of 2 / 3: 7 RCU × $0.00013 × 730
        // = $0.6643, 8 WCU × $0.00065 × 730 = $3.796; storage of 2 GiB × $0.25 = $0.50;
        // point-in-time recovery 2 GiB × $0.20 = $0.40.
        // Total: 16.425 + 0.20 + 0.6643 + 3.796 + 0.50 + 0.40 = 21.9853 → $21.99.
        let template = json!({ "Resources": {
            "LoadBalancer": { "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": {} },
            "A1": { "Type": "AWS::CloudWatch::Alarm", "Properties": {} },
            "A2": { "Type": "AWS::CloudWatch::Alarm", "Properties": {} },
            "T": { "Type": "AWS::DynamoDB::Table", "Properties": {
                "ProvisionedThroughput": { "ReadCapacityUnits": 5, "WriteCapacityUnits": 5 },
                "GlobalSecondaryIndexes": [{ "ProvisionedThroughput": { "ReadCapacityUnits": 2, "WriteCapacityUnits": 3 } }],
                "PointInTimeRecoverySpecification": { "PointInTimeRecoveryEnabled": true },
            }},
            "F": { "Type": "AWS::Lambda::Function", "Properties": {} },
        }});
        let facts = Facts {
            table_bytes: BTreeMap::from([("T".to_string(), 2 << 30)]),
            sharing: None,
        };
        let cost = estimate(&template, None, &facts, prices);
        assert_eq!(cost.fixed_usd, 21.99);
        assert_eq!(cost.delta_usd, 21.99, "a new stack adds all of it");
        assert_eq!(cost.items.len(), 6);
        // The same stack deployed without its load balancer: the change adds $16.43.
        let mut without = template.clone();
        without["Resources"]
            .as_object_mut()
            .unwrap()
            .remove("LoadBalancer");
        let cost = estimate(&template, Some(&without), &facts, prices);
        assert_eq!(cost.delta_usd, 16.43);
        assert_eq!(cost.prices_as_of, prices.as_of);
    }

    #[test]
    fn an_attached_env_pays_its_share_of_the_shared_load_balancer() {
        // $16.425 shared by 3 envs: $5.475 → $5.48 (on-demand table, nothing else fixed).
        let template = json!({
            "Metadata": { "Deployer": { "RulePriorities": [1001, 2000] } },
            "Resources": { "T": { "Type": "AWS::DynamoDB::Table", "Properties": { "BillingMode": "PAY_PER_REQUEST" } } },
        });
        let facts = Facts {
            sharing: Some(3),
            ..Facts::default()
        };
        let cost = estimate(&template, None, &facts, us_east_1());
        assert_eq!(cost.fixed_usd, 5.48);
        // Without the metadata (its own load balancer, or none): no share.
        let own = json!({ "Resources": {} });
        assert_eq!(estimate(&own, None, &facts, us_east_1()).fixed_usd, 0.0);
    }

    #[test]
    fn usage_prices_per_million_requests() {
        // 256 MB arm64, 100 ms: 1e6 × 0.1 s × 0.25 GB × $0.0000133334 = $0.333335, plus $0.20 of
        // requests: $0.533335. The same on x86_64: 0.025e6 GB-s × $0.0000166667 = $0.4166675,
        // plus $0.20: $0.6166675.
        let template = json!({ "Resources": {
            "Arm": { "Type": "AWS::Lambda::Function", "Properties": { "MemorySize": 256, "Architectures": ["arm64"] } },
            "X86": { "Type": "AWS::Lambda::Function", "Properties": { "MemorySize": 256, "Architectures": ["x86_64"] } },
            "T": { "Type": "AWS::DynamoDB::Table", "Properties": { "BillingMode": "PAY_PER_REQUEST" } },
        }});
        let usage = usage(&template, us_east_1());
        let of = |prefix: &str| {
            usage
                .iter()
                .find(|u| u.what.starts_with(prefix))
                .unwrap()
                .usd_per_million
        };
        assert!((of("Arm:") - 0.533_335).abs() < 1e-6, "{usage:?}");
        assert!((of("X86:") - 0.616_667_5).abs() < 1e-6, "{usage:?}");
        assert_eq!(of("T: on-demand writes"), 0.625);
        assert_eq!(of("T: on-demand reads"), 0.125);
        // A load balancer at a new connection per request: 1e6 / 25 = 40,000 LCU-seconds =
        // 11.111 LCU-hours × $0.008 = $0.0889. A log group kept 14 days, 1 KB a request:
        // 1e6 KB = 0.9537 GB × ($0.50 + $0.03 × 14/30) = $0.4902.
        let template = json!({ "Resources": {
            "LoadBalancer": { "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": {} },
            "Logs": { "Type": "AWS::Logs::LogGroup", "Properties": { "RetentionInDays": 14 } },
        }});
        let usage = super::usage(&template, us_east_1());
        assert!(
            (usage[0].usd_per_million - 0.088_89).abs() < 1e-4,
            "{usage:?}"
        );
        assert!(
            (usage[1].usd_per_million - 0.490_2).abs() < 1e-4,
            "{usage:?}"
        );
    }

    #[test]
    fn a_region_missing_from_the_table_has_no_prices() {
        assert!(prices::of("us-east-1").is_some());
        assert!(prices::of("xx-nowhere-1").is_none());
    }
}
