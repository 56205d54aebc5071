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

/// Per (account, region, env, function, operation, source) counts as the store holds them.
fn scoped_counts(db: &std::path::Path) -> std::collections::BTreeMap<String, i64> {
    if !db.exists() {
        return Default::default();
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use sqlx::ConnectOptions;
        let Ok(mut conn) = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true).connect().await else {
            return Default::default();
        };
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT account || '|' || region || '|' || env || '|' || function || '|' || operation || '|' || source, COUNT(*) FROM events GROUP BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
        rows.into_iter().collect()
    })
}

/// Writes text invocations of the same functions into each (role account, region), as the
/// role: returns the expected counts keyed like [`scoped_counts`].
fn write_traffic(moto: &Moto, dir: &std::path::Path, round: u32, slow: Option<(&str, &str)>) -> std::collections::BTreeMap<String, i64> {
    let slow = slow.map_or_else(|| "None".to_string(), |(a, r)| format!("({a:?}, {r:?})"));
    let out = dir.join(format!("traffic-{round}.json"));
    let mut writer = moto.boto_background(
        &format!(
            "import lambda_traffic as t
SLOW = {slow}
sts = client('sts')
expected = {{}}
now = int(time.time() * 1000) - 5_000
for account_id, name, env, region, n in [('111111111111', 'prod', 'PROD', 'us-east-1', 3), ('111111111111', 'prod', 'PROD', 'eu-west-1', 2),
                                         ('222222222222', 'dev', 'Dev', 'us-east-1', 4), ('222222222222', 'dev', 'Dev', 'eu-west-1', 1)]:
    creds = sts.assume_role(RoleArn='arn:aws:iam::%s:role/latency-sentinel-reader' % account_id, RoleSessionName='traffic')['Credentials']
    logs = boto3.client('logs', endpoint_url=ENDPOINT, region_name=region, aws_access_key_id=creds['AccessKeyId'],
                        aws_secret_access_key=creds['SecretAccessKey'], aws_session_token=creds['SessionToken'])
    w = t.Writer(logs)
    for fn, abbr in [('GenerateDynamicScenarioHandler', 'GDSH'), ('LexFulfillmentHandler', 'LEX')]:
        for i in range(n + {round}):
            bedrock = 9.0 if (name, region) == SLOW and fn == 'GenerateDynamicScenarioHandler' else 1.5
            w.text_invocation(fn, abbr, env, '$LATEST', t.stream_name('$LATEST'), now + i * 1000, bedrock, i == 0)
    for key, count in w.expected.items():
        expected['%s|%s|%s' % (name, region, key)] = count
print(json.dumps(expected))
"
        ),
        &out,
    );
    let status = writer.wait_exit(std::time::Duration::from_secs(120)).expect("the traffic writer finishes");
    assert!(status.success(), "traffic writer failed: {}", std::fs::read_to_string(out.with_extension("err")).unwrap_or_default());
    expected_counts(&std::fs::read_to_string(&out).unwrap())
}

fn accounts_config(moto: &Moto, extra: &str) -> String {
    daemon_config(
        moto,
        &format!(
            "{}{extra}[xray]\nenabled = false\n\
             [[accounts]]\nname = \"prod\"\nrole_arn = \"arn:aws:iam::111111111111:role/latency-sentinel-reader\"\nexternal_id = \"ext-prod\"\n\
             regions = [\"us-east-1\", \"eu-west-1\"]\nenv = \"PROD\"\n\
             [[accounts]]\nname = \"dev\"\nrole_arn = \"arn:aws:iam::222222222222:role/latency-sentinel-reader\"\n\
             regions = [\"us-east-1\", \"eu-west-1\"]\nenv = \"Dev\"\n",
            // No aliases: each account's env attributes its events.
            fast_logs(&[]).replace("lambda_aliases = true", "lambda_aliases = false")
        ),
    )
}

/// Two accounts × two regions, the same function names in each, each account's env from
/// its config (no aliases): every count lands on its own (account, region, env) exactly,
/// and after a SIGKILL and a restart (which re-reads the overlap) still exactly.
#[test]
fn two_accounts_in_two_regions_count_apart_and_exactly_across_a_sigkill() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let mut expected = write_traffic(&moto, dir.path(), 0, None);
    assert_eq!(expected.len(), 4 * 2 * 5, "4 scopes × 2 functions × 5 operations: {expected:?}");
    let config = accounts_config(&moto, "");
    let daemon = Daemon::start(dir.path(), &config);
    let db = daemon.db();
    wait_for("every scope's events, each in its own series", std::time::Duration::from_secs(90), || (scoped_counts(&db) == expected).then_some(()));
    let ready = daemon.get("/readyz").unwrap();
    assert_eq!(ready.0, 200, "{}", ready.1);
    for scope in ["logs:prod/us-east-1", "logs:prod/eu-west-1", "logs:dev/us-east-1", "logs:dev/eu-west-1"] {
        assert!(ready.1.contains(scope), "/readyz names {scope}: {}", ready.1);
    }

    // Reports and the API take the account and region, and name them on each row.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
        .args(["report", "top", "--since", "1h", "--format", "json", "--account", "dev", "--region", "eu-west-1", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let top: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = top["operations"].as_array().unwrap();
    let stored: i64 = rows.iter().map(|r| r["count"].as_i64().unwrap()).sum();
    let want: i64 = expected.iter().filter(|(k, _)| k.starts_with("dev|eu-west-1|")).map(|(_, v)| v).sum();
    assert_eq!(stored, want, "{top}");
    assert!(rows.iter().all(|r| r["account"] == "dev" && r["region"] == "eu-west-1" && r["env"] == "Dev"), "{top}");
    let (status, body) = daemon.get("/api/v1/operations?since=1h&account=prod&region=us-east-1").unwrap();
    assert_eq!(status, 200, "{body}");
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rows = api["operations"].as_array().unwrap();
    assert!(!rows.is_empty() && rows.iter().all(|r| r["account"] == "prod" && r["region"] == "us-east-1"), "{body}");

    daemon.proc.signal("KILL");
    drop(daemon);
    for (k, v) in write_traffic(&moto, dir.path(), 1, None) {
        *expected.entry(k).or_default() += v;
    }
    let daemon = Daemon::start(dir.path(), &config);
    wait_for("the second round, nothing twice", std::time::Duration::from_secs(90), || (scoped_counts(&db) == expected).then_some(()));
    // Every scope's log groups polled again (re-reading the overlap): still exact. The
    // source metrics name each group's account and region.
    let last_polls = |m: &str| -> Vec<f64> {
        let mut out = Vec::new();
        for (account, region) in [("prod", "us-east-1"), ("prod", "eu-west-1"), ("dev", "us-east-1"), ("dev", "eu-west-1")] {
            for f in ["GenerateDynamicScenarioHandler", "LexFulfillmentHandler"] {
                let group = format!("/aws/lambda/{f}");
                let labels = [("account", account), ("region", region), ("log_group", group.as_str())];
                out.push(metric_sum(m, "sentinel_log_group_last_poll_timestamp_seconds", &labels));
            }
        }
        out
    };
    let before = last_polls(&daemon.get("/metrics").unwrap().1);
    assert!(before.iter().all(|t| *t > 0.0), "each scope's groups are their own series: {before:?}");
    wait_for("every scope's groups polled again", std::time::Duration::from_secs(30), || {
        let now = last_polls(&daemon.get("/metrics")?.1);
        now.iter().zip(&before).all(|(n, b)| n > b).then_some(())
    });
    assert_eq!(scoped_counts(&db), expected, "{}", daemon.logs());
}

/// Dev's Bedrock call slows down in one region of its account: exactly one alert fires, named
/// with that account and region, in the API, `/metrics` and Alertmanager's labels; the same
/// operation elsewhere stays within budget.
#[test]
fn a_slowdown_in_one_accounts_region_fires_one_alert_with_its_labels() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let expected = write_traffic(&moto, dir.path(), 2, Some(("dev", "eu-west-1")));
    let budget = "[alerts]\nevaluation_interval = \"1s\"\n[[budgets]]\nname = \"bedrock-p95\"\noperation = \"BedrockCallDuration\"\n\
                  p95 = \"5s\"\nwindow = \"10m\"\nfor = \"0s\"\nmin_samples = 3\n";
    let daemon = Daemon::start(dir.path(), &accounts_config(&moto, budget));
    let db = daemon.db();
    wait_for("every scope's events", std::time::Duration::from_secs(90), || (scoped_counts(&db) == expected).then_some(()));
    let firing = wait_for("the alert", std::time::Duration::from_secs(30), || {
        let (status, body) = daemon.get("/api/v1/alerts")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let firing: Vec<serde_json::Value> =
            v["active"].as_array()?.iter().filter(|a| a["state"] == "firing").cloned().collect();
        (status == 200 && !firing.is_empty()).then_some(firing)
    });
    // A few more evaluations: still exactly one.
    let evaluations = || daemon.get("/metrics").map(|(_, m)| metric_sum(&m, "sentinel_evaluations_total", &[]));
    let seen = evaluations().unwrap();
    wait_for("three more evaluations", std::time::Duration::from_secs(30), || evaluations().filter(|n| *n >= seen + 3.0).map(|_| ()));
    let (_, body) = daemon.get("/api/v1/alerts").unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let firing_now: Vec<&serde_json::Value> = v["active"].as_array().unwrap().iter().filter(|a| a["state"] == "firing").collect();
    assert_eq!(firing_now.len(), 1, "{body}");
    let a = &firing[0];
    assert_eq!((a["account"].as_str(), a["region"].as_str(), a["env"].as_str()), (Some("dev"), Some("eu-west-1"), Some("Dev")), "{a}");
    assert_eq!((a["function"].as_str(), a["operation"].as_str()), (Some("GenerateDynamicScenarioHandler"), Some("BedrockCallDuration")));
    let (_, budgets) = daemon.get("/api/v1/budgets").unwrap();
    let budgets: serde_json::Value = serde_json::from_str(&budgets).unwrap();
    let judged = budgets["budgets"][0]["matches"].as_array().map_or(0, Vec::len);
    assert_eq!(judged, 4 * 2, "the budget judges each account, region and function apart: {budgets}");
    let (_, metrics) = daemon.get("/metrics").unwrap();
    let alerts: Vec<&str> = metrics.lines().filter(|l| l.starts_with("sentinel_alerts{") && l.contains("alertstate=\"firing\"")).collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].contains("account=\"dev\"") && alerts[0].contains("region=\"eu-west-1\""), "{}", alerts[0]);
}

/// The daemon's identity may assume the prod role but not the dev one (moto enforcing IAM):
/// prod's events all arrive, and `/readyz` and `sentinel_account_up` name dev's credentials
/// as the failure, with the role and AWS's reason.
#[test]
fn an_account_whose_role_cannot_be_assumed_is_named_and_the_others_go_on() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let expected = write_traffic(&moto, dir.path(), 0, None);
    let keys = moto.boto(
        "iam = client('iam')\n\
         iam.create_user(UserName='sentinel')\n\
         allow = {'Version': '2012-10-17', 'Statement': [\n\
             {'Effect': 'Allow', 'Action': 'sts:AssumeRole', 'Resource': 'arn:aws:iam::111111111111:role/latency-sentinel-reader'},\n\
             {'Effect': 'Allow', 'Action': ['logs:*', 'xray:*', 'cloudwatch:*'], 'Resource': '*'}]}\n\
         iam.put_user_policy(UserName='sentinel', PolicyName='sentinel', PolicyDocument=json.dumps(allow))\n\
         k = iam.create_access_key(UserName='sentinel')['AccessKey']\n\
         c = client('sts').assume_role(RoleArn='arn:aws:iam::111111111111:role/latency-sentinel-reader', RoleSessionName='setup')['Credentials']\n\
         prod_iam = boto3.client('iam', endpoint_url=ENDPOINT, region_name='us-east-1', aws_access_key_id=c['AccessKeyId'],\n\
                                 aws_secret_access_key=c['SecretAccessKey'], aws_session_token=c['SessionToken'])\n\
         trust = {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Principal': {'AWS': 'arn:aws:iam::123456789012:root'}, 'Action': 'sts:AssumeRole'}]}\n\
         prod_iam.create_role(RoleName='latency-sentinel-reader', AssumeRolePolicyDocument=json.dumps(trust))\n\
         read = {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': ['logs:*', 'xray:*', 'cloudwatch:*'], 'Resource': '*'}]}\n\
         prod_iam.put_role_policy(RoleName='latency-sentinel-reader', PolicyName='read', PolicyDocument=json.dumps(read))\n\
         print(k['AccessKeyId'], k['SecretAccessKey'])\n\
         import urllib.request\n\
         urllib.request.urlopen(urllib.request.Request(ENDPOINT + '/moto-api/reset-auth', data=b'0', method='POST', headers={'Content-Type': 'text/plain'})).read()\n",
    );
    let (id, secret) = keys.trim().split_once(' ').expect("an access key");
    let daemon = Daemon::start_with_env(dir.path(), &accounts_config(&moto, ""), &[("AWS_ACCESS_KEY_ID", id), ("AWS_SECRET_ACCESS_KEY", secret), ("AWS_SESSION_TOKEN", "")]);
    let db = daemon.db();
    let prod: std::collections::BTreeMap<String, i64> = expected.into_iter().filter(|(k, _)| k.starts_with("prod|")).collect();
    wait_for("every event of the account whose role is assumed", std::time::Duration::from_secs(90), || (scoped_counts(&db) == prod).then_some(()));
    let ready = wait_for("dev's credentials named as failing", std::time::Duration::from_secs(30), || {
        let (status, body) = daemon.get("/readyz")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (v["sources"]["credentials:dev/us-east-1"]["last_error"].is_string() && v["sources"]["credentials:prod/us-east-1"]["ready"] == true)
            .then_some((status, v))
    });
    assert_eq!(ready.0, 503, "not ready while an account cannot be read: {}", ready.1);
    let why = ready.1["sources"]["credentials:dev/eu-west-1"]["last_error"].as_str().unwrap_or_default().to_string();
    assert!(why.contains("cannot assume arn:aws:iam::222222222222:role/latency-sentinel-reader") && why.contains("AccessDenied"), "{why}");
    for scope in ["logs:prod/us-east-1", "logs:prod/eu-west-1", "credentials:prod/eu-west-1"] {
        assert_eq!(ready.1["sources"][scope]["ready"], true, "{scope}: {}", ready.1);
    }
    assert_eq!(ready.1["sources"]["logs:dev/us-east-1"]["ready"], false, "{}", ready.1);
    let (_, metrics) = daemon.get("/metrics").unwrap();
    for (account, region, up) in [("prod", "us-east-1", 1), ("prod", "eu-west-1", 1), ("dev", "us-east-1", 0), ("dev", "eu-west-1", 0)] {
        let line = format!("sentinel_account_up{{account=\"{account}\",region=\"{region}\"}} {up}");
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{}", metrics.lines().filter(|l| l.contains("account_up")).collect::<Vec<_>>().join("\n"));
    }
    assert!(!daemon.logs().contains(secret), "the secret key is never logged");

    // `doctor` checks each account through its role, and says how to fix the one that fails.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
        .args(["doctor", "--config"])
        .arg(dir.path().join("config.toml"))
        .envs(AWS_ENV.iter().copied())
        .envs([("AWS_ACCESS_KEY_ID", id), ("AWS_SECRET_ACCESS_KEY", secret), ("AWS_SESSION_TOKEN", "")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("✓ prod/eu-west-1 credentials: arn:aws:sts::111111111111:assumed-role/latency-sentinel-reader/"), "{text}");
    assert!(text.contains("✓ prod/eu-west-1 logs:FilterLogEvents"), "{text}");
    assert!(text.contains("✗ dev/us-east-1 credentials:") && text.contains("AccessDenied"), "{text}");
    assert!(text.contains("fix: let the daemon assume arn:aws:iam::222222222222:role/latency-sentinel-reader"), "{text}");
    assert!(!text.contains("dev/us-east-1 logs:"), "no calls are tried without credentials: {text}");
}

const CLOUDWATCH_READ: &str = "sts = client('sts')
out = {}
now = time.time()
for account_id, name in [('111111111111', 'prod'), ('222222222222', 'dev')]:
    c = sts.assume_role(RoleArn='arn:aws:iam::%s:role/latency-sentinel-reader' % account_id, RoleSessionName='check')['Credentials']
    for region in ['us-east-1', 'eu-west-1']:
        cw = boto3.client('cloudwatch', endpoint_url=ENDPOINT, region_name=region, aws_access_key_id=c['AccessKeyId'],
                          aws_secret_access_key=c['SecretAccessKey'], aws_session_token=c['SessionToken'])
        # (moto lists a metric once per sample: each dimension set once)
        for dims in sorted({tuple(sorted((x['Name'], x['Value']) for x in m['Dimensions'])) for m in cw.list_metrics(Namespace='LatencySentinel', MetricName='OperationLatency')['Metrics']}):
            d = dict(dims)
            if CENTRAL != ('Account' in d):
                continue
            r = cw.get_metric_statistics(Namespace='LatencySentinel', MetricName='OperationLatency', Dimensions=[{'Name': k, 'Value': v} for k, v in dims],
                                         StartTime=now - 7200, EndTime=now + 600, Period=60, Statistics=['SampleCount'])
            key = '%s|%s|%s|%s|%s' % (d.get('Account', name), d.get('Region', region), d['Environment'], d['FunctionName'], d['Operation'])
            out[key] = out.get(key, 0) + int(sum(p['SampleCount'] for p in r['Datapoints']))
print(json.dumps(out))
";

/// SampleCount per `account|region|env|function|operation` that CloudWatch holds in each
/// account and region (read with the account's role), from the dimensions each datum has:
/// its own account and region, or (published centrally) its `Account` and `Region`.
/// `central`: only the data with those dimensions (moto matches a query's dimensions as a
/// subset, so a query without them would count the central data too).
fn cloudwatch_counts(moto: &Moto, central: bool) -> std::collections::BTreeMap<String, i64> {
    let out = moto.boto(&format!("CENTRAL = {}\n{CLOUDWATCH_READ}", if central { "True" } else { "False" }));
    serde_json::from_str(out.trim().lines().last().unwrap()).unwrap()
}

/// Each account's metrics are published into that account and region (through its role);
/// with `[cloudwatch] account` set, every account's into that one, told apart by the
/// `Account` and `Region` dimensions. Counts exact either way.
#[test]
fn cloudwatch_metrics_go_into_each_account_or_one_central_account() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let stored = write_traffic(&moto, dir.path(), 0, None);
    let mut expected: std::collections::BTreeMap<String, i64> = Default::default();
    for (k, n) in &stored {
        let without_source = k.rsplit_once('|').unwrap().0.to_string();
        *expected.entry(without_source).or_default() += n;
    }
    let cloudwatch = "[cloudwatch]\nenabled = true\npublish_interval = \"1s\"\n";
    let daemon = Daemon::start(dir.path(), &accounts_config(&moto, cloudwatch));
    let db = daemon.db();
    wait_for("every scope's events", std::time::Duration::from_secs(90), || (scoped_counts(&db) == stored).then_some(()));
    wait_for("each account's metrics in its own CloudWatch", std::time::Duration::from_secs(60), || (cloudwatch_counts(&moto, false) == expected).then_some(()));
    daemon.proc.signal("TERM");
    drop(daemon);

    // The same events, published centrally by a daemon with a fresh database into dev's
    // account: its first region holds every account's data once more, apart by dimension.
    let central_dir = tempfile::tempdir().unwrap();
    let central = accounts_config(&moto, &format!("{cloudwatch}account = \"dev\"\n"));
    let daemon = Daemon::start(central_dir.path(), &central);
    let db = daemon.db();
    wait_for("every scope's events again", std::time::Duration::from_secs(90), || (scoped_counts(&db) == stored).then_some(()));
    wait_for("every account's metrics in dev's first region, apart by dimension", std::time::Duration::from_secs(60), || {
        (cloudwatch_counts(&moto, true) == expected).then_some(())
    });
    let central_regions = moto.boto(
        "c = client('sts').assume_role(RoleArn='arn:aws:iam::222222222222:role/latency-sentinel-reader', RoleSessionName='check')['Credentials']
cw = boto3.client('cloudwatch', endpoint_url=ENDPOINT, region_name='eu-west-1', aws_access_key_id=c['AccessKeyId'],
                  aws_secret_access_key=c['SecretAccessKey'], aws_session_token=c['SessionToken'])
print(sum(1 for m in cw.list_metrics(Namespace='LatencySentinel')['Metrics'] if any(d['Name'] == 'Account' for d in m['Dimensions'])))
",
    );
    assert_eq!(central_regions.trim(), "0", "only the central account's first region gets them");
}

/// `simulate --account-role` writes PROD's traffic into one account and Dev's (with a slow
/// Bedrock call) into another; the daemon reads both accounts (logs and X-Ray, no aliases:
/// each account's env), and `report compare --baseline PROD --candidate Dev` flags exactly
/// the slowed function's rows, with the Bedrock call among them.
#[test]
fn simulated_prod_and_dev_accounts_compare_with_exactly_the_injected_regression() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
        .args(["simulate", "--endpoint-url", &moto.url(), "--region", "us-east-1", "--duration", "10m", "--rate", "12/m", "--seed", "7"])
        .args(["--error-rate", "0", "--timeout-rate", "0", "--malformed-rate", "0"])
        .args(["--account-role", "arn:aws:iam::111111111111:role/latency-sentinel-reader@PROD"])
        .args(["--account-role", "arn:aws:iam::222222222222:role/latency-sentinel-reader@Dev"])
        .args(["--slow", "GenerateDynamicScenarioHandler/Bedrock.InvokeModel@Dev=9s"])
        .envs(AWS_ENV.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summaries: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(summaries.len(), 2, "one summary per account");
    let executions = |account: &str, env: &str| -> i64 {
        let s = summaries.iter().find(|s| s["account"] == account).unwrap_or_else(|| panic!("{account}: {summaries:?}"));
        assert_eq!(s["executions"].as_object().unwrap().len(), 1, "only {env}'s traffic in {account}: {s}");
        s["executions"][env].as_i64().unwrap()
    };
    let (prod_runs, dev_runs) = (executions("111111111111", "PROD"), executions("222222222222", "Dev"));
    assert!(prod_runs > 50 && dev_runs > 50, "{summaries:?}");

    let config = daemon_config(
        &moto,
        &format!(
            "{}[xray]\npoll_interval = \"1s\"\nsettle_delay = \"0s\"\nlookback = \"10m\"\nstart_lookback = \"20m\"\n\
             [[accounts]]\nname = \"prod\"\nrole_arn = \"arn:aws:iam::111111111111:role/latency-sentinel-reader\"\nregions = [\"us-east-1\"]\nenv = \"PROD\"\n\
             [[accounts]]\nname = \"dev\"\nrole_arn = \"arn:aws:iam::222222222222:role/latency-sentinel-reader\"\nregions = [\"us-east-1\"]\nenv = \"Dev\"\n",
            fast_logs(&[]).replace("lambda_aliases = true", "lambda_aliases = false")
        ),
    );
    let daemon = Daemon::start(dir.path(), &config);
    let db = daemon.db();
    let gdsh = "GenerateDynamicScenarioHandler";
    wait_for("both accounts' Bedrock calls from the logs and from X-Ray", std::time::Duration::from_secs(120), || {
        let c = scoped_counts(&db);
        let n = |k: String| c.get(&k).copied().unwrap_or(0);
        (n(format!("prod|us-east-1|PROD|{gdsh}|BedrockCallDuration|logs")) == prod_runs
            && n(format!("prod|us-east-1|PROD|{gdsh}|Bedrock.InvokeModel|xray")) == prod_runs
            && n(format!("dev|us-east-1|Dev|{gdsh}|BedrockCallDuration|logs")) == dev_runs
            && n(format!("dev|us-east-1|Dev|{gdsh}|Bedrock.InvokeModel|xray")) == dev_runs)
            .then_some(())
    });
    let c = scoped_counts(&db);
    assert!(c.keys().all(|k| k.starts_with("prod|us-east-1|PROD|") || k.starts_with("dev|us-east-1|Dev|")), "each account's env only: {c:?}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
        .args(["report", "compare", "--baseline", "PROD", "--candidate", "Dev", "--since", "1h", "--format", "json", "--no-group", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let flagged: Vec<&serde_json::Value> = report["rows"].as_array().unwrap().iter().filter(|r| r["significant"] == true).collect();
    assert!(!flagged.is_empty(), "{report}");
    assert!(flagged.iter().all(|r| r["function"] == gdsh && r["verdict"] == "regression"), "only the slowed function, slower: {flagged:#?}");
    for op in ["Bedrock.InvokeModel", "BedrockCallDuration"] {
        assert!(flagged.iter().any(|r| r["operation"] == op), "{op} flagged: {flagged:#?}");
    }
    let others = report["rows"].as_array().unwrap().iter().filter(|r| r["function"] != gdsh).count();
    assert!(others > 10, "the other functions were compared, and none flagged: {report}");

    // Every report takes the account and region and names them on its rows.
    let report_json = |args: &[&str]| -> serde_json::Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
            .arg("report")
            .args(args)
            .args(["--since", "1h", "--format", "json", "--db"])
            .arg(&db)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let functions = report_json(&["functions", "--account", "dev", "--region", "us-east-1"]);
    let rows = functions["functions"].as_array().unwrap();
    assert!(!rows.is_empty() && rows.iter().all(|r| r["account"] == "dev" && r["region"] == "us-east-1" && r["env"] == "Dev"), "{functions}");
    let slowest = functions["slowest"].as_array().unwrap();
    assert!(!slowest.is_empty() && slowest.iter().all(|r| r["account"] == "dev"), "{functions}");
    let stats = report_json(&["stats", "--operation", "BedrockCallDuration"]);
    let envs: Vec<(String, String)> = stats["by_function_env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["account"].as_str().unwrap_or_default().to_string(), r["env"].as_str().unwrap_or_default().to_string()))
        .collect();
    assert!(envs.contains(&("dev".into(), "Dev".into())) && envs.contains(&("prod".into(), "PROD".into())), "{stats}");
    let only_prod = report_json(&["compare", "--baseline", "PROD", "--candidate", "Dev", "--account", "prod"]);
    assert!(only_prod["rows"].as_array().unwrap().iter().all(|r| r["candidate"]["count"] == 0), "Dev is not in prod's account: {only_prod}");
    for (account, env) in [("dev", "Dev"), ("prod", "PROD")] {
        let b = report_json(&["bottleneck", "--account", account]);
        let w = &b["workflows"][0];
        assert!(w["traces"].as_u64().unwrap_or(0) > 0, "{b}");
        assert!(w["functions"].as_array().unwrap().iter().all(|f| f["env"].is_null() || f["env"] == env), "{account}'s traces only: {b}");
    }
    let dev_bottleneck = report_json(&["bottleneck", "--account", "dev"]);
    assert_eq!(dev_bottleneck["workflows"][0]["bottleneck"]["operation"], "Bedrock.InvokeModel", "{dev_bottleneck}");
    let (status, body) = daemon.get(&format!("/api/v1/operations/{gdsh}/BedrockCallDuration/history?since=1h&step=5m&account=dev")).unwrap();
    assert_eq!(status, 200, "{body}");
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    let series = h["series"].as_array().unwrap();
    assert_eq!(series.len(), 1, "{h}");
    assert_eq!((series[0]["account"].as_str(), series[0]["region"].as_str(), series[0]["env"].as_str()), (Some("dev"), Some("us-east-1"), Some("Dev")));
}
