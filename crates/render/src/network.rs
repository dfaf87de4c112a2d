//! Where the load balancer lives: the shared bootstrap VPC, an existing VPC, or a dedicated one.

use serde_json::{Value, json};

use super::{Doc, bootstrap, r#ref};
use deployer_spec::{Placement, Spec};

/// Parameter through which deployer passes the shared VPC id (from the bootstrap stack).
pub const VPC_PARAMETER: &str = "NetworkVpcId";
/// Parameter through which deployer passes the shared VPC's public subnets.
pub const SUBNETS_PARAMETER: &str = "NetworkSubnetIds";

/// The VPC and the public subnets the load balancer uses, as template values.
pub struct Placed {
    pub vpc_id: Value,
    /// A list value (or a reference to a list parameter).
    pub subnet_ids: Value,
    /// What an internet-facing load balancer must wait for (and outlive on delete): the gateway
    /// attachment and the public routes of a VPC created in the same template.
    pub depends_on: Vec<String>,
}

/// Whether the template takes the shared VPC through [`VPC_PARAMETER`] and [`SUBNETS_PARAMETER`].
pub fn uses_shared_vpc(spec: &Spec) -> bool {
    spec.alb.is_some() && spec.placement() == Placement::SharedVpc
}

/// Resolves the spec's network section; adds a VPC to `doc` only for `dedicated: true`.
pub fn place(spec: &Spec, doc: &mut Doc) -> Placed {
    if spec.alb.is_none() {
        // Functions live outside any VPC (DynamoDB is reached over its public endpoint), so without
        // a load balancer the stack needs no network at all.
        return Placed {
            vpc_id: Value::Null,
            subnet_ids: Value::Null,
            depends_on: Vec::new(),
        };
    }
    match spec.placement() {
        // Passed as parameters that deployer reads from the bootstrap stack's outputs, rather than
        // Fn::ImportValue: an import locks the export, so the shared VPC could never change while
        // any environment exists (and moto cannot resolve imports in CREATE change sets).
        Placement::SharedVpc => {
            doc.parameters.insert(
                VPC_PARAMETER.into(),
                json!({ "Type": "AWS::EC2::VPC::Id", "Description": format!("The shared VPC of the {} stack", bootstrap::STACK_NAME) }),
            );
            doc.parameters.insert(
                SUBNETS_PARAMETER.into(),
                json!({ "Type": "List<AWS::EC2::Subnet::Id>", "Description": format!("Public subnets of the {} stack, in two Availability Zones", bootstrap::STACK_NAME) }),
            );
            Placed {
                vpc_id: r#ref(VPC_PARAMETER),
                subnet_ids: r#ref(SUBNETS_PARAMETER),
                depends_on: Vec::new(),
            }
        }
        Placement::Existing { vpc_id, subnet_ids } => Placed {
            vpc_id: json!(vpc_id),
            subnet_ids: json!(subnet_ids),
            depends_on: Vec::new(),
        },
        Placement::Dedicated => {
            let zones = [0, 1].map(|i| json!({ "Fn::Select": [i, { "Fn::GetAZs": "" }] }));
            public_vpc(
                doc,
                "10.192.0.0/16",
                &["10.192.0.0/20", "10.192.16.0/20"],
                &zones,
            )
        }
    }
}

/// A VPC with one public subnet per CIDR, each in its own Availability Zone (`zones`, one per
/// subnet), behind an internet gateway. Shared by the bootstrap stack and `network: { dedicated:
/// true }`.
pub fn public_vpc(doc: &mut Doc, cidr: &str, subnet_cidrs: &[&str], zones: &[Value]) -> Placed {
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
    let mut depends_on = vec![
        "VpcGatewayAttachment".to_string(),
        "PublicDefaultRoute".to_string(),
    ];
    for (i, subnet_cidr) in subnet_cidrs.iter().enumerate() {
        let id = format!("PublicSubnet{}", i + 1);
        doc.resource(
            &id,
            "AWS::EC2::Subnet",
            json!({
                "VpcId": r#ref("Vpc"),
                "CidrBlock": subnet_cidr,
                "AvailabilityZone": zones[i],
                "MapPublicIpOnLaunch": false,
            }),
        );
        doc.resource(
            format!("{id}RouteTableAssociation"),
            "AWS::EC2::SubnetRouteTableAssociation",
            json!({ "SubnetId": r#ref(&id), "RouteTableId": r#ref("PublicRouteTable") }),
        );
        depends_on.push(format!("{id}RouteTableAssociation"));
        subnet_ids.push(r#ref(&id));
    }
    Placed {
        vpc_id: r#ref("Vpc"),
        subnet_ids: Value::Array(subnet_ids),
        depends_on,
    }
}
