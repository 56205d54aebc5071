//! Leases against a real PostgreSQL (a throwaway cluster per test): three nodes split 40
//! units by count; a node that dies (stops renewing) loses its units to the others within
//! the TTL and a round, and the fence refuses its old epochs; a node that leaves hands its
//! units over at once; the migrations run once when several nodes start together.

mod common;

use common::postgres::Postgres;
use common::wait_for;
use latency_sentinel::cluster::keeper::{self, Held, KeeperConfig};
use latency_sentinel::store::postgres::{PgStore, PgTarget};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const TTL: Duration = Duration::from_secs(5);

fn store(pg: &Postgres) -> PgStore {
    let url = pg.url();
    PgStore::connect(PgTarget { url: &url, password: "", pool_size: 4, rejected_max_bytes: 4096, connect_timeout: Duration::from_secs(5) }).unwrap()
}

struct Node {
    held: watch::Receiver<Held>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(pg: &Postgres, rt: &tokio::runtime::Runtime, name: &str, units: &watch::Receiver<Vec<String>>) -> Node {
    let (tx, held) = watch::channel(Held::new());
    let stop = CancellationToken::new();
    let cfg = KeeperConfig { node_id: name.into(), ttl: TTL, sticky: vec!["evaluator".into()] };
    let (fleet, _) = watch::channel(keeper::Fleet::default());
    let task = rt.spawn(keeper::run(store(pg), cfg, units.clone(), tx, fleet, stop.clone()));
    Node { held, stop, task }
}

/// unit → holder, from what each node says it holds; None when two nodes claim a unit.
fn owners(nodes: &BTreeMap<&str, &Node>) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (name, n) in nodes {
        for unit in n.held.borrow().keys() {
            if out.insert(unit.clone(), name.to_string()).is_some() {
                return None;
            }
        }
    }
    Some(out)
}

#[test]
fn three_nodes_split_the_work_and_survive_the_loss_of_one() {
    let pg = Postgres::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _in_runtime = rt.enter();
    // Three daemons starting at once each apply the migrations: one does, the others wait.
    rt.block_on(async {
        let stores = [store(&pg), store(&pg), store(&pg)];
        let runs = stores.iter().map(|s| s.migrate());
        let applied: Vec<Vec<i64>> = futures::future::join_all(runs).await.into_iter().map(|r| r.expect("migrations under the lock")).collect();
        assert_eq!(applied.iter().filter(|a| !a.is_empty()).count(), 1, "one applied them, the others found nothing to do: {applied:?}");
    });
    let mut all: Vec<String> = (0..39).map(|i| format!("logs/default/-/aws/lambda/f{i:02}")).collect();
    all.push("evaluator".into());
    let (_units_tx, units) = watch::channel(all.clone());
    let a = start(&pg, &rt, "a", &units);
    let b = start(&pg, &rt, "b", &units);
    let c = start(&pg, &rt, "c", &units);

    let nodes = BTreeMap::from([("a", &a), ("b", &b), ("c", &c)]);
    let split = wait_for("40 units split 14/13/13, none held twice", Duration::from_secs(30), || {
        let o = owners(&nodes)?;
        let mut counts: Vec<usize> = ["a", "b", "c"].iter().map(|n| o.values().filter(|h| h == n).count()).collect();
        counts.sort();
        (o.len() == 40 && counts == [13, 13, 14]).then_some(o)
    });
    // The database agrees with what each node believes.
    let db = store(&pg);
    for (unit, node) in split.iter().take(5) {
        assert_eq!(rt.block_on(db.holder(unit)).unwrap().as_deref(), Some(node.as_str()));
    }
    let fleet = rt.block_on(db.nodes()).unwrap();
    assert_eq!(fleet.iter().map(|n| (n.node_id.as_str(), n.live)).collect::<Vec<_>>(), [("a", true), ("b", true), ("c", true)]);

    // c dies without a word (its task aborted: no renewal, no release).
    let c_units: BTreeMap<String, i64> = c.held.borrow().clone();
    c.task.abort();
    let died = std::time::Instant::now();
    let survivors = BTreeMap::from([("a", &a), ("b", &b)]);
    let taken = wait_for("a and b hold all 40 units, 20 each", Duration::from_secs(30), || {
        let o = owners(&survivors)?;
        let each = ["a", "b"].map(|n| o.values().filter(|h| *h == n).count());
        (o.len() == 40 && each == [20, 20]).then_some(o)
    });
    let took = died.elapsed();
    assert!(took <= TTL + TTL / 3 + Duration::from_secs(2), "taken over within the TTL and a round: {took:?}");
    assert!(took >= TTL - Duration::from_secs(1), "not before c's leases expired: {took:?}");
    // Every unit c held changed hands with a higher epoch; c's old epochs are fenced off.
    for (unit, old_epoch) in &c_units {
        assert!(rt.block_on(db.holds("c", unit, *old_epoch)).unwrap() == false, "{unit}: c's writes are refused");
        let new_holder = &taken[unit];
        let epoch = survivors[new_holder.as_str()].held.borrow()[unit];
        assert!(epoch > *old_epoch, "{unit}: epoch {epoch} after {old_epoch}");
        assert!(rt.block_on(db.holds(new_holder, unit, epoch)).unwrap());
    }

    // b leaves on shutdown: a has everything within a round, not a TTL.
    b.stop.cancel();
    let left = std::time::Instant::now();
    rt.block_on(async { b.task.await.unwrap() });
    wait_for("a holds all 40", Duration::from_secs(10), || (a.held.borrow().len() == 40).then_some(()));
    assert!(left.elapsed() < TTL, "handed over at once: {:?}", left.elapsed());
    assert!(rt.block_on(db.nodes()).unwrap().iter().all(|n| n.node_id != "b"), "b's row is gone");

    // A new node joins: a gives back down to its share.
    let d = start(&pg, &rt, "d", &units);
    let joined = BTreeMap::from([("a", &a), ("d", &d)]);
    wait_for("a and d split 20/20", Duration::from_secs(30), || {
        let o = owners(&joined)?;
        let each = ["a", "d"].map(|n| o.values().filter(|h| *h == n).count());
        (o.len() == 40 && each == [20, 20]).then_some(())
    });
    assert!(a.held.borrow().contains_key("evaluator"), "the evaluator stays where it was while other units can move");
    a.stop.cancel();
    d.stop.cancel();
}

/// PostgreSQL down: rounds fail, the node keeps its work until its leases would have
/// expired and then lets go of it; when the database is back, it takes its share again.
#[test]
fn a_database_outage_stops_the_work_after_the_ttl_and_it_resumes_after() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let pg = Postgres::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _in_runtime = rt.enter();
    rt.block_on(store(&pg).migrate()).unwrap();
    let all: Vec<String> = (0..6).map(|i| format!("unit-{i}")).collect();
    let (_units_tx, units) = watch::channel(all);
    let a = start(&pg, &rt, "a", &units);
    wait_for("a holds all 6", Duration::from_secs(20), || (a.held.borrow().len() == 6).then_some(()));
    pg.stop();
    let down = std::time::Instant::now();
    wait_for("a lets its work go", TTL + Duration::from_secs(10), || a.held.borrow().is_empty().then_some(()));
    assert!(down.elapsed() >= TTL - Duration::from_secs(2), "not before the leases could have expired: {:?}", down.elapsed());
    pg.start_server();
    wait_for("a takes its work back", Duration::from_secs(30), || (a.held.borrow().len() == 6).then_some(()));
    a.stop.cancel();
}

/// `latency-sentinel migrate` against the shared database: the first run applies, the next
/// finds it up to date; a password given apart from the URL is used and never printed.
#[test]
fn the_migrate_command_applies_once_and_never_prints_the_url() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, format!("[storage]\nurl = \"${{DB_URL}}\"\npassword = \"${{DB_PASSWORD}}\"\n")).unwrap();
    let url = pg.url();
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
            .args(["migrate", "--config"])
            .arg(&config)
            .env("DB_URL", &url)
            .env("DB_PASSWORD", "not-needed-with-trust")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(!text.contains(&url) && !text.contains("not-needed-with-trust"), "{text}");
        text
    };
    assert!(run().contains("PostgreSQL: applied [20261127000001, 20261127000002, 20261127000003, 20261127000004, 20261127000005, 20261127000006, 20261127000007, 20261128000008]"));
    assert!(run().contains("PostgreSQL: up to date"));
}
