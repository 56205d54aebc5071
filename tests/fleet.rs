//! Several daemons sharing one PostgreSQL history (a throwaway cluster) while tailing moto's
//! server, the work split by leases: three daemons over 40 log groups store every event
//! exactly once; one of them (the evaluator's holder) is killed mid-traffic and its groups
//! are taken over within the lease TTL and a poll, the firing alert stays firing and is not
//! notified again, and the breach is notified once by the whole fleet. And PostgreSQL down
//! for 30 s: the daemons answer `/healthz`, are not ready, and lose nothing.

mod common;

use common::postgres::Postgres;
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(6);
const POLL: Duration = Duration::from_secs(1);

/// A fleet member's config: every group under `/aws/lambda/fleet-`, polled every second.
fn config(moto: &Moto, pg: &Postgres, node: &str, extra: &str) -> String {
    daemon_config(
        moto,
        &format!(
            "[logs]\nlog_group_prefixes = [\"/aws/lambda/fleet-\"]\npoll_interval = \"{}s\"\nidle_poll_interval = \"2s\"\n\
             discovery_interval = \"5s\"\ningestion_delay = \"10s\"\nstart_lookback = \"10m\"\nrequests_per_second = 50.0\n\
             [xray]\nenabled = false\n[cluster]\nnode_id = \"{node}\"\nlease_ttl = \"{}s\"\n{extra}",
            POLL.as_secs(),
            TTL.as_secs()
        ),
    )
    .replace("[storage]\n", &format!("[storage]\nurl = \"{}\"\n", pg.url()))
}

/// Creates `n` groups with one stream each and writes one timing line per group per second
/// for `run_s` seconds in the background (group `fleet-00`'s lines take 2 s, the others'
/// 50 ms); its stdout ends with the exact counts.
fn traffic(moto: &Moto, dir: &Path, n: usize, run_s: u64) -> (Proc, std::path::PathBuf) {
    let out = dir.join("expected.json");
    let writer = moto.boto_background(
        &format!(
            "import lambda_traffic as t
logs = client('logs')
groups = ['/aws/lambda/fleet-%02d' % i for i in range({n})]
streams = {{}}
for g in groups:
    logs.create_log_group(logGroupName=g)
    streams[g] = t.stream_name('1')
    logs.create_log_stream(logGroupName=g, logStreamName=streams[g])
w = t.Writer(logs)
start = time.time()
while time.time() < start + {run_s}:
    tick = time.time()
    now = int(tick * 1000)
    for i, g in enumerate(groups):
        line = t.seed('TIMING', 'S', metric='ScaleDuration', value_sec=2.0 if i == 0 else 0.05)
        logs.put_log_events(logGroupName=g, logStreamName=streams[g], logEvents=[{{'timestamp': now, 'message': line}}])
        w.expect('default', g.rsplit('/', 1)[1], 'ScaleDuration', 'logs', 1)
    time.sleep(max(0.0, 1.0 - (time.time() - tick)))
print(json.dumps(dict(w.expected)))
"
        ),
        &out,
    );
    (writer, out)
}

fn readyz(d: &Daemon) -> Option<serde_json::Value> {
    serde_json::from_str(&d.get("/readyz")?.1).ok()
}

/// The log groups a daemon's `/readyz` says it holds.
fn held_groups(d: &Daemon) -> Option<BTreeSet<String>> {
    let r = readyz(d)?;
    Some(r["cluster"]["units"].as_object()?.keys().filter(|u| u.starts_with("logs:")).cloned().collect())
}

/// Firing notifications the webhook received for `fleet-00`'s alert.
fn firing_posts(hook: &std::sync::Mutex<Vec<serde_json::Value>>) -> Vec<serde_json::Value> {
    hook.lock().unwrap().iter().filter(|v| v["labels"]["function"] == "fleet-00" && v["status"] == "firing").cloned().collect()
}

fn wait_writer(writer: &mut Proc, out: &Path) -> BTreeMap<String, i64> {
    let status = writer.wait_exit(Duration::from_secs(120)).expect("the traffic writer ends");
    assert!(status.success(), "{}", std::fs::read_to_string(out.with_extension("err")).unwrap_or_default());
    expected_counts(&std::fs::read_to_string(out).unwrap())
}

#[test]
fn three_daemons_split_forty_groups_and_one_killed_loses_nothing_and_notifies_nothing_twice() {
    let pg = Postgres::start();
    let moto = Moto::start();
    let root = tempfile::tempdir().unwrap();
    let (hook_port, hook) = webhook_receiver();
    let alerting = format!(
        "[alerts]\nevaluation_interval = \"1s\"\nwebhook_url = \"http://127.0.0.1:{hook_port}/hook\"\n\
         [[budgets]]\nname = \"slow-call\"\nfunction = \"fleet-00\"\noperation = \"ScaleDuration\"\np95 = \"1s\"\nwindow = \"10m\"\nfor = \"0s\"\nmin_samples = 3\n"
    );
    let (mut writer, out) = traffic(&moto, root.path(), 40, 50);
    let mut daemons: BTreeMap<&str, Daemon> = BTreeMap::new();
    for node in ["a", "b", "c"] {
        let dir = root.path().join(node);
        std::fs::create_dir_all(&dir).unwrap();
        daemons.insert(node, Daemon::start(&dir, &config(&moto, &pg, node, &alerting)));
    }

    // The 40 groups split among the three, each group held by exactly one.
    let split = wait_for("40 groups split among three daemons", Duration::from_secs(60), || {
        let held: Vec<BTreeSet<String>> = daemons.values().map(held_groups).collect::<Option<_>>()?;
        let all: BTreeSet<&String> = held.iter().flatten().collect();
        (all.len() == 40 && held.iter().map(BTreeSet::len).sum::<usize>() == 40 && held.iter().all(|h| h.len() >= 12)).then_some(held)
    });
    assert!(split.iter().all(|h| h.len() <= 14), "balanced by count: {:?}", split.iter().map(BTreeSet::len).collect::<Vec<_>>());
    let r = readyz(&daemons["a"]).unwrap();
    let nodes: Vec<&str> = r["cluster"]["nodes"].as_array().unwrap().iter().filter(|n| n["live"] == true).filter_map(|n| n["node"].as_str()).collect();
    assert_eq!(nodes, ["a", "b", "c"], "{r}");

    // The breach is notified once by the fleet, whichever node judges it.
    wait_for("the slow call's alert notified", Duration::from_secs(60), || (!firing_posts(&hook).is_empty()).then_some(()));
    let holder = readyz(&daemons["a"]).unwrap()["cluster"]["evaluator"].as_str().unwrap().to_string();
    for d in daemons.values() {
        let m = d.get("/metrics").unwrap().1;
        assert!(m.contains(&format!("sentinel_cluster_evaluator{{node=\"{holder}\"}} 1")), "every node names the evaluator's holder");
        assert_eq!(metric_sum(&m, "sentinel_cluster_nodes", &[]), 3.0);
        let (_, alerts) = d.get("/api/v1/alerts").unwrap();
        assert!(alerts.contains("\"firing\""), "every node shows the fleet's firing alert: {alerts}");
    }

    // The evaluator's holder is killed mid-traffic.
    let killed = daemons.remove(holder.as_str()).unwrap();
    let orphaned = held_groups(&killed).unwrap();
    assert!(orphaned.len() >= 12, "the killed node tailed its share: {orphaned:?}");
    killed.proc.signal("KILL");
    let at = Instant::now();
    drop(killed);
    let survivors: Vec<&Daemon> = daemons.values().collect();
    wait_for("the survivors hold all 40 groups", Duration::from_secs(30), || {
        let held: Vec<BTreeSet<String>> = survivors.iter().map(|d| held_groups(d)).collect::<Option<_>>()?;
        (held.iter().map(BTreeSet::len).sum::<usize>() == 40 && held.iter().flatten().collect::<BTreeSet<_>>().len() == 40).then_some(())
    });
    let taken_over = at.elapsed();
    eprintln!("{} groups of the killed node taken over in {taken_over:?}", orphaned.len());
    // Its leases expire TTL after its last renewal (a third of the TTL before the kill, at
    // most) and the next round takes them; one poll later they are read.
    assert!(taken_over <= TTL + TTL / 3 + POLL + Duration::from_secs(2), "{} groups taken over in {taken_over:?}", orphaned.len());
    let new_holder = wait_for("a survivor holds the evaluator", Duration::from_secs(30), || {
        let h = readyz(survivors[0])?["cluster"]["evaluator"].as_str()?.to_string();
        (h != holder).then_some(h)
    });
    let judge = daemons.values().find(|d| readyz(d).is_some_and(|r| r["cluster"]["node"] == new_holder.as_str())).unwrap();
    let evaluations = || judge.get("/metrics").map(|(_, m)| metric_sum(&m, "sentinel_evaluations_total", &[]));
    let seen = evaluations().unwrap();
    wait_for("the new holder judged three more times", Duration::from_secs(30), || evaluations().filter(|n| *n >= seen + 3.0).map(|_| ()));
    let (_, alerts) = judge.get("/api/v1/alerts").unwrap();
    assert!(alerts.contains("\"firing\""), "the alert stays firing after the takeover: {alerts}");

    // Every event stored exactly once, none lost with the killed node.
    let expected = wait_writer(&mut writer, &out);
    assert_eq!(expected.len(), 40);
    wait_for("every event stored exactly once", Duration::from_secs(60), || (pg.event_counts() == expected).then_some(()));
    let posts = hook.lock().unwrap().clone();
    assert_eq!(firing_posts(&hook).len(), 1, "notified once by the fleet, not again after the takeover: {posts:?}");
    assert!(posts.iter().all(|p| p["status"] != "resolved"), "{posts:?}");
    // A little later still exactly once (no straggling duplicate).
    let seen = evaluations().unwrap();
    wait_for("two more evaluations", Duration::from_secs(30), || evaluations().filter(|n| *n >= seen + 2.0).map(|_| ()));
    assert_eq!(pg.event_counts(), expected);
    assert_eq!(firing_posts(&hook).len(), 1);
}

#[test]
fn postgresql_down_for_thirty_seconds_loses_nothing() {
    let pg = Postgres::start();
    let moto = Moto::start();
    let root = tempfile::tempdir().unwrap();
    let (mut writer, out) = traffic(&moto, root.path(), 10, 60);
    let daemons: Vec<Daemon> = ["a", "b"]
        .into_iter()
        .map(|node| {
            let dir = root.path().join(node);
            std::fs::create_dir_all(&dir).unwrap();
            Daemon::start(&dir, &config(&moto, &pg, node, ""))
        })
        .collect();
    wait_for("events stored and both ready", Duration::from_secs(60), || {
        let stored: i64 = pg.event_counts().values().sum();
        (stored > 0 && daemons.iter().all(|d| d.get("/readyz").is_some_and(|(s, _)| s == 200))).then_some(())
    });

    pg.stop();
    let down = Instant::now();
    let mut not_ready = [false, false];
    while down.elapsed() < Duration::from_secs(30) {
        for (i, d) in daemons.iter().enumerate() {
            let (status, body) = d.get("/healthz").expect("the daemon answers while PostgreSQL is down");
            assert_eq!((status, body.as_str()), (200, "ok\n"));
            if let Some((503, ready)) = d.get("/readyz") {
                let r: serde_json::Value = serde_json::from_str(&ready).unwrap();
                assert_eq!(r["store"], false, "{r}");
                not_ready[i] = true;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(not_ready, [true, true], "both reported not ready while PostgreSQL was down");
    pg.start_server();

    wait_for("both ready again", Duration::from_secs(60), || daemons.iter().all(|d| d.get("/readyz").is_some_and(|(s, _)| s == 200)).then_some(()));
    let expected = wait_writer(&mut writer, &out);
    wait_for("every event stored exactly once after the outage", Duration::from_secs(90), || {
        let got = pg.event_counts();
        (got == expected).then_some(())
    });
    let logs: String = daemons.iter().map(Daemon::logs).collect();
    assert!(logs.contains("Lease round failed"), "the outage was seen by the keepers");
    assert!(!logs.contains(&pg.url()), "the database URL is never logged");
}
