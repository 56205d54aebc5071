//! The first hour with an account, against moto's server: `init` writes a config from what
//! the account holds (simulated Atlas Engine traffic) that `check-config` accepts, with
//! budgets fitted to what it saw, and never overwrites a file without `--force`; `doctor`
//! passes every check with the permissions the config needs (exit 0, a test metric
//! written, a test notification received), and names the one action an identity lacks
//! with the statement of `deploy/iam/policy.json` that grants it (exit 1).

mod common;

use common::*;
use std::process::Command;

fn config(dir: &std::path::Path, moto: &Moto, extra: &str) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[aws]\nregion = \"us-east-1\"\nendpoint_url = {:?}\n[storage]\npath = {:?}\n[http]\nlisten = \"127.0.0.1:0\"\n[logs]\nlog_group_prefixes = [\"/aws/lambda/\"]\n{extra}",
            moto.url(),
            dir.join("sentinel.db").to_str().unwrap()
        ),
    )
    .unwrap();
    path
}

fn doctor(config: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
        .arg("doctor")
        .arg("--config")
        .arg(config)
        .args(args)
        .envs(AWS_ENV.iter().copied())
        .env_remove("AWS_SESSION_TOKEN")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn every_check_passes_with_what_the_config_needs() {
    let moto = Moto::start();
    moto.boto(
        "logs = client('logs')\nlogs.create_log_group(logGroupName='/aws/lambda/Hello')\n\
         iam = client('iam')\n\
         role = iam.create_role(RoleName='r', AssumeRolePolicyDocument='{}')['Role']['Arn']\n\
         lam = client('lambda')\n\
         import io, zipfile\nbuf = io.BytesIO()\nz = zipfile.ZipFile(buf, 'w'); z.writestr('index.py', 'def handler(e, c): return 1'); z.close()\n\
         lam.create_function(FunctionName='Hello', Runtime='python3.12', Role=role, Handler='index.handler', Code={'ZipFile': buf.getvalue()})\n\
         v = lam.publish_version(FunctionName='Hello')['Version']\n\
         lam.create_alias(FunctionName='Hello', Name='PROD', FunctionVersion=v)\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let (port, received) = webhook_receiver();
    let cfg = config(dir.path(), &moto, &format!("[cloudwatch]\nenabled = true\n[alerts]\nwebhook_url = \"http://127.0.0.1:{port}/hook?token=s3cret\"\n"));
    let (code, out) = doctor(&cfg, &["--write", "--notify"], &[]);
    assert_eq!(code, Some(0), "{out}");
    for line in [
        "✓ config:",
        "✓ credentials: arn:aws:",
        "✓ logs:DescribeLogGroups: 1 log group(s)",
        "✓ logs:FilterLogEvents: read one second of /aws/lambda/Hello",
        "✓ lambda:ListAliases: Hello: 1 alias(es)",
        "✓ xray:GetTraceSummaries:",
        "✓ xray:GetTraceSegmentDestination: spans go to X-Ray",
        "✓ cloudwatch:PutMetricData: published LatencySentinel/DoctorCheck",
        "✓ webhook: test notification accepted (HTTP 200)",
        "✓ database:",
        "✓ http.listen:",
        "all 11 checks passed",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
    assert!(!out.contains("s3cret"), "a receiver's URL is a secret:\n{out}");
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["labels"]["operation"], "TestNotification");
    let metrics = moto.boto("print(client('cloudwatch').list_metrics(Namespace='LatencySentinel')['Metrics'][0]['MetricName'])");
    assert_eq!(metrics.trim(), "DoctorCheck");

    // A config error stops there, and names the key.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[logs]\nlog_group_prefixes = [\"/aws/lambda/\"]\npoll_interval = \"fast\"\n").unwrap();
    let (code, out) = doctor(&bad, &[], &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("✗ config: logs.poll_interval"), "{out}");
}

#[test]
fn an_identity_without_one_action_is_told_which_and_where_it_is_granted() {
    let moto = Moto::start();
    // An identity allowed everything this config needs but logs:FilterLogEvents. (moto
    // checks resources as `*` and spells a few actions its own way, hence the wildcards.)
    let keys = moto.boto(
        "client('logs').create_log_group(logGroupName='/aws/lambda/Hello')\n\
         iam = client('iam')\n\
         iam.create_user(UserName='reader')\n\
         policy = {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': ['logs:DescribeLogGroups', 'xray:*', 'sts:GetCallerIdentity'], 'Resource': '*'}]}\n\
         iam.put_user_policy(UserName='reader', PolicyName='almost', PolicyDocument=json.dumps(policy))\n\
         k = iam.create_access_key(UserName='reader')['AccessKey']\n\
         print(k['AccessKeyId'], k['SecretAccessKey'])\n\
         import urllib.request\n\
         urllib.request.urlopen(urllib.request.Request(ENDPOINT + '/moto-api/reset-auth', data=b'0', method='POST', headers={'Content-Type': 'text/plain'})).read()\n",
    );
    let (id, secret) = keys.trim().split_once(' ').expect("an access key");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &moto, "[environments]\nlambda_aliases = false\n");
    let (code, out) = doctor(&cfg, &[], &[("AWS_ACCESS_KEY_ID", id), ("AWS_SECRET_ACCESS_KEY", secret)]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("✓ credentials: arn:aws:iam::123456789012:user/reader"), "{out}");
    assert!(out.contains("✓ logs:DescribeLogGroups"), "{out}");
    assert!(out.contains("✗ logs:FilterLogEvents: access denied"), "{out}");
    assert!(out.contains("statement `TailLambdaLogGroups`") && out.contains("deploy/iam/policy.json"), "{out}");
    assert!(out.contains("✓ xray:GetTraceSegmentDestination"), "{out}");
    assert!(out.contains("1 of 9 checks failed"), "{out}");
}

#[test]
fn init_writes_a_config_that_fits_what_the_account_holds() {
    let moto = Moto::start();
    let out = Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
        .args(["simulate", "--endpoint-url", &moto.url(), "--region", "us-east-1", "--duration", "10m", "--rate", "12/m", "--seed", "7"])
        .envs(AWS_ENV.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "simulate failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let init = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
            .args(["init", "--region", "us-east-1", "--output"])
            .arg(&path)
            .args(extra)
            .envs(AWS_ENV.iter().copied())
            .env("AWS_ENDPOINT_URL", moto.url())
            .output()
            .unwrap();
        (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };
    let (code, said) = init(&[]);
    assert_eq!(code, Some(0), "{said}");
    let text = std::fs::read_to_string(&path).unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_latency-sentinel")).args(["check-config", "--config"]).arg(&path).output().unwrap();
    assert!(check.status.success(), "{}\n{text}", String::from_utf8_lossy(&check.stderr));
    let config: toml::Value = toml::from_str(&text).unwrap();
    let groups: Vec<&str> = config["logs"]["log_groups"].as_array().unwrap().iter().filter_map(|g| g.as_str()).collect();
    assert!(groups.contains(&"/aws/lambda/GenerateDynamicScenarioHandler"), "{text}");
    assert_eq!(config["environments"]["lambda_aliases"].as_bool(), Some(true), "{text}");
    assert_eq!(config["xray"]["enabled"].as_bool(), Some(true), "{text}");
    assert!(text.contains("Dev→") && text.contains("PROD→"), "the aliases are shown: {text}");
    assert!(text.contains("GenerateDynamicScenarioHandler: Dev→2, PROD→1; traced"), "traced in the last hour: {text}");
    let budgets = config["budgets"].as_array().expect("budgets proposed");
    let operations: Vec<&str> = budgets.iter().filter_map(|b| b["operation"].as_str()).collect();
    for op in ["Bedrock.InvokeModel", "BedrockCallDuration"] {
        assert!(operations.contains(&op), "no budget for {op}: {text}");
    }
    // Each budget is the observed p95 × 1.5 rounded up, and says what it was fitted to.
    for line in text.lines().filter(|l| l.starts_with("p95 = ")) {
        let (value, why) = line.split_once("  # observed p95 ").unwrap_or_else(|| panic!("{line}"));
        let budget = humantime::parse_duration(value.trim_start_matches("p95 = ").trim_matches('"')).unwrap().as_secs_f64();
        let observed = why.split(' ').next().unwrap().parse::<f64>().unwrap() * if why.contains(" ms ") { 0.001 } else { 1.0 };
        assert!(budget >= observed * 1.5 * 0.95 && budget <= observed * 1.5 * 1.6 + 0.001, "{line}");
        assert!(why.ends_with(" calls"), "{line}");
    }

    // Never overwritten without --force.
    std::fs::write(&path, "# mine\n").unwrap();
    let (code, said) = init(&[]);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("--force"), "{said}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
    let (code, said) = init(&["--force"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(std::fs::read_to_string(&path).unwrap().contains("[[budgets]]"));
}
