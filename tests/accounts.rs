//! Several AWS accounts from one daemon, against moto's server (which gives credentials
//! that act in account 111111111111 to whoever assumes a role there, and keeps accounts
//! and regions apart).

mod common;

use common::*;
use latency_sentinel::config::Secret;
use latency_sentinel::scope::Scope;

fn scope(account: &str, role_arn: &str, region: &str) -> Scope {
    Scope {
        account: account.into(),
        region: region.into(),
        role_arn: role_arn.into(),
        external_id: Secret("ext-1".into()),
        session_name: "latency-sentinel".into(),
        env: String::new(),
        logs_enabled: true,
        log_groups: vec![],
        log_group_prefixes: vec!["/aws/lambda/".into()],
        xray_enabled: true,
        unscoped: false,
    }
}

async fn base(moto: &Moto) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto.url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

/// A scope with a role acts in the role's account and its own region; the same log group
/// name in two accounts (or two regions) is two log groups.
#[tokio::test]
async fn an_assumed_role_acts_in_its_account_and_region() {
    let moto = Moto::start();
    let base = base(&moto).await;
    let prod = latency_sentinel::aws::scope_sdk_config(&base, &scope("prod", "arn:aws:iam::111111111111:role/latency-sentinel-reader", "eu-west-1")).await;
    let who = aws_sdk_sts::Client::new(&prod).get_caller_identity().send().await.expect("assumed credentials work");
    assert_eq!(who.account(), Some("111111111111"));
    assert!(who.arn().unwrap_or_default().contains("assumed-role/latency-sentinel-reader/latency-sentinel"), "{who:?}");
    assert_eq!(prod.region().map(|r| r.as_ref()), Some("eu-west-1"));

    let logs = aws_sdk_cloudwatchlogs::Client::new(&prod);
    logs.create_log_group().log_group_name("/aws/lambda/f").send().await.unwrap();
    let groups = |c: aws_sdk_cloudwatchlogs::Client| async move {
        c.describe_log_groups().send().await.unwrap().log_groups().iter().filter_map(|g| g.log_group_name().map(str::to_string)).collect::<Vec<_>>()
    };
    assert_eq!(groups(logs.clone()).await, ["/aws/lambda/f"]);
    assert!(groups(aws_sdk_cloudwatchlogs::Client::new(&base)).await.is_empty(), "not in the caller's own account");
    let other_region = latency_sentinel::aws::scope_sdk_config(&base, &scope("prod", "arn:aws:iam::111111111111:role/latency-sentinel-reader", "us-east-1")).await;
    assert!(groups(aws_sdk_cloudwatchlogs::Client::new(&other_region)).await.is_empty(), "nor in the account's other region");

    // Without a role: the caller's own account, in the scope's region.
    let own = latency_sentinel::aws::scope_sdk_config(&base, &scope("dev", "", "eu-west-1")).await;
    let who = aws_sdk_sts::Client::new(&own).get_caller_identity().send().await.unwrap();
    assert_eq!(who.account(), Some("123456789012"));
}
