//! Lambda traffic for the daemon's tests, written into moto's server with boto3 through
//! `tests/support/lambda_traffic.py`: functions with PROD and Dev aliases, a burst of
//! invocations in every format, and a writer that keeps going in the background; each
//! returns the exact counts a correct collector stores.

use super::*;
use std::collections::BTreeMap;

/// Writes through moto directly (the application's side); the daemon reads through whatever
/// endpoint its config names.
pub fn prelude() -> String {
    format!(
        "sys.path.insert(0, {:?})\nimport lambda_traffic as t\nlogs = client('logs'); lam = client('lambda'); iam = client('iam')\n",
        repo().join("tests/support").to_str().unwrap()
    )
}

/// The log tailer with short intervals; `call_timeout` 2 s so the proxy's stalls time out.
pub fn config(moto: &Moto, extra: &str) -> String {
    daemon_config(
        moto,
        &format!(
            "{}[xray]\nenabled = false\n{extra}",
            fast_logs(&[("requests_per_second", "50.0")])
        ),
    )
    .replace("max_attempts = 3\n", "max_attempts = 3\ncall_timeout = \"2s\"\n")
}

/// Functions GenerateDynamicScenarioHandler and InvokeOutboundCallHandler with PROD → v1 and
/// Dev → v2, and `n` invocations per (function, alias) in every format; returns the counts.
pub fn setup_and_write(moto: &Moto, n: u32) -> BTreeMap<String, i64> {
    expected_counts(&moto.boto(&format!(
        "{}
versions = {{f: t.setup_function(lam, iam, f) for f in ['GenerateDynamicScenarioHandler', 'InvokeOutboundCallHandler']}}
json.dump(versions, open({:?}, 'w'))
w = t.write_phase(logs, versions, int(time.time() * 1000) - 60000, {n})
print(json.dumps(dict(w.expected)))
",
        prelude(),
        versions_file(moto).to_str().unwrap()
    )))
}

pub fn versions_file(moto: &Moto) -> PathBuf {
    moto.dir.path().join("versions.json")
}

/// `n` more invocations per (function, alias), written now.
pub fn write_more(moto: &Moto, n: u32) -> BTreeMap<String, i64> {
    expected_counts(&moto.boto(&format!(
        "{}
versions = json.load(open({:?}))
w = t.write_phase(logs, versions, int(time.time() * 1000) - 2000, {n}, bedrock_s=4.0, cold=False)
print(json.dumps(dict(w.expected)))
",
        prelude(),
        versions_file(moto).to_str().unwrap()
    )))
}

pub fn merge(a: &mut BTreeMap<String, i64>, b: BTreeMap<String, i64>) {
    for (k, v) in b {
        *a.entry(k).or_default() += v;
    }
}

/// A traffic writer running in the background: every ~200 ms one invocation per (function,
/// alias) in every format, into one stream each, until `stop()`; then its exact counts.
pub struct Writer {
    proc: Proc,
    stop: PathBuf,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Writer {
    /// Sets the functions up first when `setup`, else uses those `setup_and_write` made.
    pub fn start(moto: &Moto, setup: bool) -> Writer {
        let dir = tempfile::tempdir().unwrap();
        let (ready, stop, out) = (dir.path().join("ready"), dir.path().join("stop"), dir.path().join("expected.json"));
        let versions = if setup {
            "versions = {f: t.setup_function(lam, iam, f) for f in ['GenerateDynamicScenarioHandler', 'InvokeOutboundCallHandler']}".to_string()
        } else {
            format!("versions = json.load(open({:?}))", versions_file(moto).to_str().unwrap())
        };
        let proc = moto.boto_background(
            &format!(
                "{}
{versions}
streams = {{(f, e): t.stream_name(versions[f][e]) for f in versions for e in ('PROD', 'Dev')}}
w = t.Writer(logs)
i = 0
open({ready:?}, 'w').close()
while not os.path.exists({stop:?}):
    now = int(time.time() * 1000)
    for e in ('PROD', 'Dev'):
        f = 'GenerateDynamicScenarioHandler'
        w.text_invocation(f, 'GDSH', e, versions[f][e], streams[(f, e)], now, 1.5 + (i % 7) / 10, {cold} and i == 0)
        f = 'InvokeOutboundCallHandler'
        if e == 'Dev':
            w.json_invocation(f, 'IOCH', e, versions[f][e], streams[(f, e)], now, {cold} and i == 0)
        else:
            w.powertools_and_emf(f, e, versions[f][e], streams[(f, e)], now)
    i += 1
    time.sleep(0.2)
print(json.dumps(dict(w.expected)))
",
                prelude(),
                ready = ready.to_str().unwrap(),
                stop = stop.to_str().unwrap(),
                cold = if setup { "True" } else { "False" },
            ),
            &out,
        );
        wait_for("the traffic writer", Duration::from_secs(60), || ready.exists().then_some(()));
        Writer { proc, stop, out, _dir: dir }
    }

    /// Stops it; what it wrote.
    pub fn stop(mut self) -> BTreeMap<String, i64> {
        std::fs::write(&self.stop, "").unwrap();
        let status = self.proc.wait_exit(Duration::from_secs(30)).expect("traffic writer stops");
        assert!(status.success(), "traffic writer failed: {}", std::fs::read_to_string(self.out.with_extension("err")).unwrap_or_default());
        expected_counts(&std::fs::read_to_string(&self.out).unwrap())
    }
}

