//! The `deployer-bootstrap` stack: one per account and region, holding the artifact bucket and
//! the shared VPC. Shared so that ephemeral environments neither spend one of the region's five
//! default VPCs each nor wait for a VPC to be created.

use serde_json::json;

use super::{Doc, Template, get_att, network, r#ref};

/// The bootstrap stack's name.
pub const STACK_NAME: &str = "deployer-bootstrap";
/// Export holding the artifact bucket name.
pub const EXPORT_BUCKET: &str = "deployer-bootstrap-ArtifactBucket";
/// Export holding the shared VPC id.
pub const EXPORT_VPC_ID: &str = "deployer-bootstrap-VpcId";
/// Exports holding the shared public subnets, one per Availability Zone.
pub const EXPORT_SUBNETS: [&str; 2] = [
    "deployer-bootstrap-PublicSubnet1",
    "deployer-bootstrap-PublicSubnet2",
];
/// Output holding the artifact bucket name.
pub const OUTPUT_BUCKET: &str = "ArtifactBucket";
/// Output holding the shared VPC id.
pub const OUTPUT_VPC_ID: &str = "VpcId";
/// Outputs holding the shared public subnets.
pub const OUTPUT_SUBNETS: [&str; 2] = ["PublicSubnet1", "PublicSubnet2"];
/// Parameters naming the zones of the two subnets: resolved once, when the stack is created, and
/// passed unchanged on every later update, so that subnets that load balancers use never move.
pub const ZONE_PARAMETERS: [&str; 2] = ["AvailabilityZone1", "AvailabilityZone2"];

/// Days a replaced (noncurrent) artifact version is kept. Current objects never expire: keys are
/// content hashes, so a key a deployed stack references is always a current object.
const NONCURRENT_DAYS: u32 = 30;

/// Renders the bootstrap stack.
pub fn template() -> Template {
    let mut doc = Doc::default();
    let bucket = doc.resource(
        "ArtifactBucket",
        "AWS::S3::Bucket",
        json!({
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    { "ServerSideEncryptionByDefault": { "SSEAlgorithm": "AES256" } }
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": true,
                "BlockPublicPolicy": true,
                "IgnorePublicAcls": true,
                "RestrictPublicBuckets": true,
            },
            "OwnershipControls": { "Rules": [{ "ObjectOwnership": "BucketOwnerEnforced" }] },
            "VersioningConfiguration": { "Status": "Enabled" },
            "LifecycleConfiguration": {
                "Rules": [{
                    "Id": "expire-replaced-artifacts",
                    "Status": "Enabled",
                    "NoncurrentVersionExpiration": { "NoncurrentDays": NONCURRENT_DAYS },
                    "AbortIncompleteMultipartUpload": { "DaysAfterInitiation": 1 },
                }]
            },
        }),
    );
    // Artifacts are the only copy of what is deployed: keep them if the stack goes.
    bucket.insert("DeletionPolicy".into(), json!("Retain"));
    bucket.insert("UpdateReplacePolicy".into(), json!("Retain"));
    doc.resource(
        "ArtifactBucketPolicy",
        "AWS::S3::BucketPolicy",
        json!({
            "Bucket": r#ref("ArtifactBucket"),
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [
                        get_att("ArtifactBucket", "Arn"),
                        { "Fn::Sub": "${ArtifactBucket.Arn}/*" },
                    ],
                    "Condition": { "Bool": { "aws:SecureTransport": "false" } },
                }],
            },
        }),
    );
    for (i, name) in ZONE_PARAMETERS.iter().enumerate() {
        doc.parameters.insert(
            name.to_string(),
            json!({
                "Type": "AWS::EC2::AvailabilityZone::Name",
                "Description": format!("Availability Zone of PublicSubnet{}; kept once chosen", i + 1),
            }),
        );
    }
    let vpc = network::public_vpc(
        &mut doc,
        "10.191.0.0/16",
        &["10.191.0.0/20", "10.191.16.0/20"],
        &ZONE_PARAMETERS.map(r#ref),
    );
    doc.outputs.insert(
        OUTPUT_BUCKET.into(),
        json!({
            "Description": "Bucket holding function artifacts, keyed by content hash",
            "Value": r#ref("ArtifactBucket"),
            "Export": { "Name": EXPORT_BUCKET },
        }),
    );
    doc.outputs.insert(
        OUTPUT_VPC_ID.into(),
        json!({ "Description": "The shared VPC", "Value": vpc.vpc_id, "Export": { "Name": EXPORT_VPC_ID } }),
    );
    let subnets = vpc.subnet_ids.as_array().cloned().unwrap_or_default();
    for (i, (subnet, export)) in subnets.into_iter().zip(EXPORT_SUBNETS).enumerate() {
        doc.outputs.insert(
            OUTPUT_SUBNETS[i].into(),
            json!({ "Description": "A public subnet of the shared VPC", "Value": subnet, "Export": { "Name": export } }),
        );
    }
    doc.finish(
        "deployer bootstrap: artifact bucket and shared VPC for deployer stacks in this region"
            .into(),
    )
}
