//! What a cost estimate ([`crate::cost`]) needs from AWS beyond the template: the deployed
//! template, each table's current size, how many envs share the app's load balancer. A
//! courtesy: what cannot be read counts as nothing (a size of 0, no deployed template).

use std::collections::BTreeMap;

use super::cloud::Cloud;
use super::model::Stack;
use crate::cost::Facts;

/// The stack's deployed template, parsed (`None`: no stack, or unreadable).
pub async fn deployed_template<C: Cloud>(
    cloud: &C,
    stack: Option<&Stack>,
) -> Option<serde_json::Value> {
    let stack = stack?;
    let text = cloud.deployed_template(&stack.name).await.ok()?;
    serde_json::from_str(&text).ok()
}

/// Each table's size (DescribeTable, which DynamoDB updates about every six hours), and, for an
/// env on the shared load balancer, how many envs hold a slot of it (this one included).
pub async fn facts<C: Cloud>(
    cloud: &C,
    stack: Option<&Stack>,
    shared: Option<(&str, &str)>,
) -> Facts {
    let mut table_bytes = BTreeMap::new();
    if let Some(stack) = stack {
        let resources = cloud.resources(&stack.name).await.unwrap_or_default();
        for r in resources
            .iter()
            .filter(|r| r.resource_type == "AWS::DynamoDB::Table")
        {
            if let Ok(summary) = cloud.table_summary(&r.physical_id).await {
                let bytes = summary.size_bytes.unwrap_or(0).max(0) as u64;
                table_bytes.insert(r.logical_id.clone(), bytes);
            }
        }
    }
    let sharing = match shared {
        Some((bucket, app)) => {
            // The envs of the env's own shared load balancer (a new env: the first one's).
            let held = stack
                .and_then(|s| s.tags.get(super::model::SHARED_TAG))
                .and_then(|tag| super::shared_alb::Slot::from_tag(app, tag));
            let index = held.map_or(1, |slot| slot.index);
            let keys = super::shared_alb::holders(cloud, bucket, app, index)
                .await
                .unwrap_or_default();
            Some(keys.len() as u32 + u32::from(held.is_none()))
        }
        None => None,
    };
    Facts {
        table_bytes,
        sharing,
    }
}

/// The fixed monthly cost of a deployed stack, in cents, from its deployed template (`None`: no
/// template). An attached env includes its share of the shared
/// load balancer (`bucket`: where the slots are recorded).
pub async fn stack_fixed_cents<C: Cloud>(
    cloud: &C,
    stack: &Stack,
    bucket: Option<&str>,
    prices: &crate::cost::Prices,
) -> Option<u64> {
    let template = deployed_template(cloud, Some(stack)).await?;
    let app = stack.tags.get(super::model::APP_TAG).map(String::as_str);
    let attached = stack
        .tags
        .get(super::model::SHARED_TAG)
        .is_some_and(|t| t.contains('/'));
    let shared = match (bucket, app, attached) {
        (Some(bucket), Some(app), true) => Some((bucket, app)),
        _ => None,
    };
    let facts = facts(cloud, Some(stack), shared).await;
    let cost = crate::cost::estimate(&template, None, &facts, prices);
    Some((cost.fixed_usd * 100.0).round() as u64)
}
