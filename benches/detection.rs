//! Detection latency, end to end against moto's server: slow events are written to the
//! emulator, and the clock stops when the webhook receives the firing alert. Settings as
//! the issue fixes them: `logs.poll_interval` 5 s, `alerts.evaluation_interval` 5 s, `for`
//! 0. Printed next to the same run's "written → stored" time (the tailer's share) and the
//! target, poll + evaluation interval + 5 s.

#[path = "../tests/common/mod.rs"]
mod common;
use common::*;
use std::time::{Duration, Instant};

const PRELUDE: &str = "sys.path.insert(0, 'tests/support')\nimport lambda_traffic as t\nlogs = client('logs'); lam = client('lambda'); iam = client('iam')\n";

fn main() {
    let moto = Moto::start();
    let versions = moto.dir.path().join("versions.json");
    moto.boto(&format!(
        "{PRELUDE}versions = {{f: t.setup_function(lam, iam, f) for f in ['GenerateDynamicScenarioHandler']}}\njson.dump(versions, open({:?}, 'w'))\n",
        versions.to_str().unwrap()
    ));
    let write = |values: &str| {
        moto.boto(&format!(
            "{PRELUDE}versions = json.load(open({:?}))
w = t.Writer(logs)
v = versions['GenerateDynamicScenarioHandler']['Dev']
now = int(time.time() * 1000)
for i, b in enumerate([{values}]):
    w.text_invocation('GenerateDynamicScenarioHandler', 'GDSH', 'Dev', v, t.stream_name(v), now - 500 + i, b, False)
",
            versions.to_str().unwrap()
        ));
    };
    let (hook_port, hooks) = webhook_receiver();
    let dir = tempfile::tempdir().unwrap();
    let config = daemon_config(
        &moto,
        &format!(
            r#"
[logs]
log_group_prefixes = ["/aws/lambda/"]
poll_interval = "5s"
idle_poll_interval = "5s"
discovery_interval = "5s"
ingestion_delay = "30s"
[xray]
enabled = false
[alerts]
evaluation_interval = "5s"
webhook_url = "http://127.0.0.1:{hook_port}/hook"
[[budgets]]
operation = "BedrockCallDuration"
p95 = "5s"
window = "30s"
for = "0s"
keep_firing_for = "0s"
min_samples = 5
"#
        ),
    );
    // Fast traffic first, so the group is known and polled at its busy interval.
    write("1.0, 1.1, 1.2, 1.3, 1.4, 1.5");
    let daemon = Daemon::start(dir.path(), &config);
    let db = daemon.db();
    wait_for("baseline traffic stored", Duration::from_secs(60), || {
        (query_scalar_i64(&db, "SELECT COUNT(*) FROM events WHERE operation = 'BedrockCallDuration'") >= 6).then_some(())
    });

    let mut detections = Vec::new();
    let mut stored = Vec::new();
    for round in 0..3 {
        hooks.lock().unwrap().clear();
        let before = query_scalar_i64(&db, "SELECT COUNT(*) FROM events WHERE operation = 'BedrockCallDuration'");
        let t0 = Instant::now();
        write("9.1, 9.2, 9.3, 9.4, 9.5, 9.6, 9.7, 9.8, 9.9, 9.95, 9.97, 9.99");
        wait_for("slow events stored", Duration::from_secs(60), || {
            (query_scalar_i64(&db, "SELECT COUNT(*) FROM events WHERE operation = 'BedrockCallDuration'") >= before + 12).then_some(())
        });
        stored.push(t0.elapsed().as_secs_f64());
        wait_for("firing webhook", Duration::from_secs(60), || {
            hooks.lock().unwrap().iter().any(|h| h["status"] == "firing").then_some(())
        });
        detections.push(t0.elapsed().as_secs_f64());
        println!("round {round}: stored after {:.1} s, alert fired after {:.1} s", stored[round], detections[round]);
        // Back under budget: the slow events age out of the 30 s window and it resolves.
        write("1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0");
        wait_for("resolved", Duration::from_secs(120), || hooks.lock().unwrap().iter().any(|h| h["status"] == "resolved").then_some(()));
    }
    let worst = detections.iter().copied().fold(0.0, f64::max);
    let mean = detections.iter().sum::<f64>() / detections.len() as f64;
    let stored_mean = stored.iter().sum::<f64>() / stored.len() as f64;
    let target = 5.0 + 5.0 + 5.0;
    println!("detection latency: mean {mean:.1} s, worst {worst:.1} s (written → stored: mean {stored_mean:.1} s; target ≤ {target:.0} s)");
    println!("detection: mean_s={mean:.1} worst_s={worst:.1} baseline_stored_mean_s={stored_mean:.1} target_s={target:.0} within_target={}", worst <= target);
}
