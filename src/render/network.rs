//! Where the load balancer lives: the shared bootstrap VPC, an existing VPC, or a dedicated one.

use serde_json::{Value, json};

use super::{Doc, bootstrap, r#ref};
use crate::spec::{Placement, Spec};

/// The VPC and the two public subnets the load balancer uses, as template values.
pub struct Placed {
    pub vpc_id: Value,
    pub subnet_ids: Vec<Value>,
}

/// Resolves the spec's network section; adds a VPC to `doc` only for `dedicated: true`.
pub fn place(spec: &Spec, doc: &mut Doc) -> Placed {
    if spec.alb.is_none() {
        // Functions live outside any VPC (DynamoDB is reached over its public endpoint), so without
        // a load balancer the stack needs no network at all.
        return Placed {
            vpc_id: Value::Null,
            subnet_ids: Vec::new(),
        };
    }
    match spec.placement() {
        Placement::SharedVpc => Placed {
            vpc_id: json!({ "Fn::ImportValue": bootstrap::EXPORT_VPC_ID }),
            subnet_ids: bootstrap::EXPORT_SUBNETS
                .iter()
                .map(|export| json!({ "Fn::ImportValue": export }))
                .collect(),
        },
        Placement::Existing { vpc_id, subnet_ids } => Placed {
            vpc_id: json!(vpc_id),
            subnet_ids: subnet_ids.iter().map(|s| json!(s)).collect(),
        },
        Placement::Dedicated => {
            public_vpc(doc, "10.192.0.0/16", &["10.192.0.0/20", "10.192.16.0/20"])
        }
    }
}

/// A VPC with one public subnet per CIDR, each in its own Availability Zone, behind an internet
/// gateway. Shared by the bootstrap stack and `network: { dedicated: true }`.
pub fn public_vpc(doc: &mut Doc, cidr: &str, subnet_cidrs: &[&str]) -> Placed {
    doc.resource(
        "Vpc",
        "AWS::EC2::VPC",
        json!({ "CidrBlock": cidr, "EnableDnsHostnames": true, "EnableDnsSupport": true }),
    );
    doc.resource("InternetGateway", "AWS::EC2::InternetGateway", json!({}));
    doc.resource(
        "VpcGatewayAttachment",
        "AWS::EC2::VPCGatewayAttachment",
        json!({ "VpcId": r#ref("Vpc"), "InternetGatewayId": r#ref("InternetGateway") }),
    );
    doc.resource(
        "PublicRouteTable",
        "AWS::EC2::RouteTable",
        json!({ "VpcId": r#ref("Vpc") }),
    );
    doc.resource(
        "PublicDefaultRoute",
        "AWS::EC2::Route",
        json!({
            "RouteTableId": r#ref("PublicRouteTable"),
            "DestinationCidrBlock": "0.0.0.0/0",
            "GatewayId": r#ref("InternetGateway"),
        }),
    )
    .insert("DependsOn".into(), json!("VpcGatewayAttachment"));
    let mut subnet_ids = Vec::new();
    for (i, subnet_cidr) in subnet_cidrs.iter().enumerate() {
        let id = format!("PublicSubnet{}", i + 1);
        doc.resource(
            &id,
            "AWS::EC2::Subnet",
            json!({
                "VpcId": r#ref("Vpc"),
                "CidrBlock": subnet_cidr,
                "AvailabilityZone": { "Fn::Select": [i, { "Fn::GetAZs": "" }] },
                "MapPublicIpOnLaunch": false,
            }),
        );
        doc.resource(
            format!("{id}RouteTableAssociation"),
            "AWS::EC2::SubnetRouteTableAssociation",
            json!({ "SubnetId": r#ref(&id), "RouteTableId": r#ref("PublicRouteTable") }),
        );
        subnet_ids.push(r#ref(&id));
    }
    Placed {
        vpc_id: r#ref("Vpc"),
        subnet_ids,
    }
}
