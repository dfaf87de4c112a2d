//! The committed price table: per region, the prices of what a spec can create. Each value is
//! the on-demand price AWS publishes on the service's pricing page (named per field); the table
//! says when it was read. A region not in it is a warning, and no estimate.

use std::borrow::Cow;

/// Prices of one region, in USD.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Prices {
    /// The region.
    pub region: Cow<'static, str>,
    /// When these were read (YYYY-MM-DD): from the pricing pages for the committed table, from
    /// the Price List Query API for live prices.
    pub as_of: Cow<'static, str>,
    /// Application Load Balancer, per hour or partial hour (Elastic Load Balancing pricing).
    pub alb_hour: f64,
    /// Application Load Balancer, per LCU-hour (Elastic Load Balancing pricing).
    pub alb_lcu_hour: f64,
    /// Provisioned write capacity, per WCU-hour (DynamoDB pricing, "Provisioned capacity").
    pub dynamodb_wcu_hour: f64,
    /// Provisioned read capacity, per RCU-hour (DynamoDB pricing, "Provisioned capacity").
    pub dynamodb_rcu_hour: f64,
    /// On-demand, per million write request units (DynamoDB pricing, "On-demand capacity").
    pub dynamodb_write_million: f64,
    /// On-demand, per million read request units (DynamoDB pricing, "On-demand capacity").
    pub dynamodb_read_million: f64,
    /// Table storage, per GB-month, Standard table class (DynamoDB pricing, "Data storage").
    pub dynamodb_storage_gb_month: f64,
    /// Continuous backups (point-in-time recovery), per GB-month of table size (DynamoDB
    /// pricing, "Backup and restore").
    pub dynamodb_pitr_gb_month: f64,
    /// Lambda, per million requests (Lambda pricing).
    pub lambda_request_million: f64,
    /// Lambda duration on x86_64, per GB-second (Lambda pricing, first tier).
    pub lambda_x86_gb_second: f64,
    /// Lambda duration on arm64, per GB-second (Lambda pricing, first tier).
    pub lambda_arm_gb_second: f64,
    /// A standard-resolution metric alarm, per month (CloudWatch pricing, "Alarms").
    pub alarm_month: f64,
    /// Log ingestion, per GB (CloudWatch pricing, "Logs", Standard log class).
    pub logs_ingest_gb: f64,
    /// Log storage, per GB-month (CloudWatch pricing, "Logs", "Store (Archival)").
    pub logs_storage_gb_month: f64,
}

/// The committed table. Only regions whose prices were read from the pricing pages are here;
/// `--prices live` reads any other from the Price List Query API.
pub const TABLE: &[Prices] = &[Prices {
    region: Cow::Borrowed("us-east-1"),
    as_of: Cow::Borrowed("2025-06-01"),
    alb_hour: 0.0225,
    alb_lcu_hour: 0.008,
    dynamodb_wcu_hour: 0.00065,
    dynamodb_rcu_hour: 0.00013,
    dynamodb_write_million: 0.625,
    dynamodb_read_million: 0.125,
    dynamodb_storage_gb_month: 0.25,
    dynamodb_pitr_gb_month: 0.20,
    lambda_request_million: 0.20,
    lambda_x86_gb_second: 0.000_016_666_7,
    lambda_arm_gb_second: 0.000_013_333_4,
    alarm_month: 0.10,
    logs_ingest_gb: 0.50,
    logs_storage_gb_month: 0.03,
}];

/// The committed prices of `region`, if the table has them.
pub fn of(region: &str) -> Option<&'static Prices> {
    TABLE.iter().find(|p| p.region == region)
}

/// Where prices come from (`--prices`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// The committed table (`src/cost/prices.rs`).
    #[default]
    Table,
    /// The Price List Query API (`pricing:GetProducts`), cached for a week.
    Live,
}
