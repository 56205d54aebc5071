//! The built-in console in a real browser: Debian's `chromium`, headless, against a daemon
//! fed by `simulate` with Dev's Bedrock call slowed. Every page loads with no console
//! message (errors, CSP violations, uncaught exceptions all land there) and no failed
//! request, and requests nothing but the daemon (the browser's own network log is read);
//! the board shows the slowed operation firing in Dev and ok in PROD; the operation page
//! draws both envs and the budget; the bottleneck page marks Bedrock.InvokeModel. Each page
//! is captured at 1280×800 and 390×844 and the captures checked for being non-blank. And
//! the token flow: 401 without it, a cookie after it.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const SLOWED: (&str, &str) = ("GenerateDynamicScenarioHandler", "Bedrock.InvokeModel");

fn chromium() -> PathBuf {
    for c in ["chromium", "chromium-browser"] {
        if let Ok(out) = Command::new("sh").args(["-c", &format!("command -v {c}")]).output() {
            if out.status.success() {
                return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            }
        }
    }
    panic!("chromium is missing: scripts/test-env.sh install installs Debian's chromium");
}

/// What one headless load of a page gave.
struct Visit {
    dom: String,
    /// Console messages (the page's, and errors the browser reports there).
    console: Vec<String>,
    /// Every request the page made (the navigation to it included), one entry per request.
    urls: Vec<String>,
    /// Requests that failed (network errors) or were answered ≥ 400.
    failures: Vec<String>,
}

/// Headless chromium with nothing of its own on the network (no updates, sync, metrics,
/// sign-in), every host but 127.0.0.1 unresolvable, and its network log kept.
fn browser(dir: &Path, size: (u32, u32), virtual_ms: u32) -> Command {
    let profile = tempfile::tempdir_in(dir).unwrap().keep();
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-domain-reliability",
        "--disable-breakpad",
        "--disable-client-side-phishing-detection",
        "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
        "--no-pings",
        "--hide-scrollbars",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--virtual-time-budget={virtual_ms}"))
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--window-size={},{}", size.0, size.1));
    cmd
}

/// What the page asked for, from the browser's network log: every request the page's own
/// origin initiated (its scripts, styles, fetches, images) and the navigation to `page`,
/// with the ones that failed (a network error, or an answer ≥ 400). The browser's own
/// background requests (no initiator) are not the page's: the resolver rules keep them on
/// this machine anyway.
fn read_net_log(path: &Path, origin: &str, page: &str) -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // Chromium may leave the log's closing brackets off when it exits: close them.
    let log: serde_json::Value = serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(&format!("{}]}}", text.trim_end().trim_end_matches(','))))
        .unwrap_or_else(|e| panic!("the network log {} does not parse: {e}", path.display()));
    let mut by_source: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
    let events = log["events"].as_array().cloned().unwrap_or_default();
    for e in &events {
        let p = &e["params"];
        if let (Some(url), Some(initiator)) = (p["url"].as_str(), p["initiator"].as_str()) {
            if initiator == origin || url == page {
                by_source.insert(e["source"]["id"].as_i64().unwrap_or(-1), url.to_string());
            }
        }
    }
    let mut failures = Vec::new();
    for e in &events {
        let Some(url) = by_source.get(&e["source"]["id"].as_i64().unwrap_or(-1)) else { continue };
        let p = &e["params"];
        if let Some(err) = p["net_error"].as_i64() {
            // ERR_ABORTED: a load the page itself replaced (a refresh), not a failure.
            if err < 0 && err != -3 {
                failures.push(format!("{url}: net error {err}"));
            }
        }
        if let Some(status) = p["headers"].as_array().and_then(|h| h.first()).and_then(|l| l.as_str()).and_then(|l| l.split_whitespace().nth(1)) {
            if status.parse::<u16>().is_ok_and(|s| s >= 400) {
                failures.push(format!("{url}: HTTP {status}"));
            }
        }
    }
    let requests: Vec<String> = by_source.into_values().collect();
    (requests, failures)
}

/// Loads `url` and lets `virtual_ms` of the page's time pass (timers run, animation does not).
fn visit(dir: &Path, origin: &str, url: &str, virtual_ms: u32) -> Visit {
    let net = tempfile::NamedTempFile::new_in(dir).unwrap().into_temp_path().keep().unwrap();
    let out = browser(dir, (1280, 800), virtual_ms).arg(format!("--log-net-log={}", net.display())).arg("--dump-dom").arg(url).output().expect("run chromium");
    assert!(out.status.success(), "chromium failed on {url}: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console = stderr.lines().filter(|l| l.contains(":CONSOLE")).map(str::to_string).collect();
    let (urls, failures) = read_net_log(&net, origin, url);
    Visit { dom: String::from_utf8_lossy(&out.stdout).into_owned(), console, urls, failures }
}

/// Captures `url` at `size` into `png`; returns how many distinct colours it has.
fn capture(dir: &Path, url: &str, size: (u32, u32), png: &Path) -> usize {
    let out = browser(dir, size, 8000).arg(format!("--screenshot={}", png.display())).arg(url).output().expect("run chromium");
    assert!(out.status.success() && png.exists(), "no screenshot of {url}: {}", String::from_utf8_lossy(&out.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), size, "{}", png.display());
    let px = info.color_type.samples();
    buf[..info.buffer_size()].chunks(px).map(|c| c[..3.min(px)].to_vec()).collect::<BTreeSet<_>>().len()
}

fn console_config(moto: &Moto, extra: &str) -> String {
    daemon_config(
        moto,
        &format!(
            "{}[xray]\npoll_interval = \"2s\"\nsettle_delay = \"0s\"\nlookback = \"15m\"\nstart_lookback = \"1h\"\nrequests_per_second = 20.0\n\
             [alerts]\nevaluation_interval = \"1s\"\n[[budgets]]\nname = \"bedrock-p95\"\noperation = \"Bedrock.InvokeModel\"\np95 = \"5s\"\n\
             window = \"5m\"\nfor = \"0s\"\nmin_samples = 5\n{extra}",
            fast_logs(&[])
        ),
    )
}

#[test]
fn every_page_loads_clean_in_chromium_and_shows_the_slowdown() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
        .args(["simulate", "--endpoint-url", &moto.url(), "--region", "us-east-1", "--duration", "10m", "--rate", "12/m", "--seed", "7"])
        .args(["--slow", "GenerateDynamicScenarioHandler/Bedrock.InvokeModel@Dev=9s,from=-4m"])
        .envs(AWS_ENV.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let daemon = Daemon::start(dir.path(), &console_config(&moto, ""));
    wait_for("the Dev Bedrock alert firing", Duration::from_secs(120), || {
        let (_, body) = daemon.get("/api/v1/alerts")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["active"].as_array()?.iter().any(|a| a["state"] == "firing" && a["env"] == "Dev" && a["operation"] == SLOWED.1).then_some(())
    });
    wait_for("the bottleneck's traces", Duration::from_secs(60), || {
        let (_, body) = daemon.get("/api/v1/bottleneck?since=1h")?;
        body.contains(SLOWED.1).then_some(())
    });

    let origin = format!("http://127.0.0.1:{}", daemon.port);
    let operation = format!("/ui/operations/{}/{}?range=1h", SLOWED.0, SLOWED.1);
    let pages = [
        ("board", "/".to_string()),
        ("operation", operation),
        ("compare", "/ui/compare?baseline=PROD&candidate=Dev&since=1h".to_string()),
        ("bottleneck", "/ui/bottleneck?since=1h".to_string()),
        ("alerts", "/ui/alerts".to_string()),
        ("health", "/ui/health".to_string()),
    ];
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for (name, path) in &pages {
        let url = format!("{origin}{path}");
        // The board is watched for longer than its 15 s refresh.
        let v = visit(dir.path(), &origin, &url, if *name == "board" { 20_000 } else { 8000 });
        assert!(v.console.is_empty(), "{name}: console messages:\n{}", v.console.join("\n"));
        assert!(v.failures.is_empty(), "{name}: failed requests: {:?}", v.failures);
        let foreign: Vec<&String> = v.urls.iter().filter(|u| !u.starts_with(&format!("{origin}/")) && !u.starts_with("data:")).collect();
        assert!(foreign.is_empty(), "{name}: requests beyond the daemon: {foreign:?}");
        assert!(v.urls.iter().any(|u| u.contains("/ui/assets/console.js")), "{name}: the page's script was loaded: {:?}", v.urls);
        if *name != "board" {
            assert_eq!(v.urls.iter().filter(|u| **u == url).count(), 1, "{name}: loaded once within 8 s (no refresh yet)");
        }
        match *name {
            "board" => {
                let row = |env: &str| {
                    let marker = format!("data-env=\"{env}\" data-function=\"{}\" data-operation=\"{}\" data-status=\"", SLOWED.0, SLOWED.1);
                    let at = v.dom.find(&marker).unwrap_or_else(|| panic!("no {env} row for the slowed operation"));
                    v.dom[at + marker.len()..].split('"').next().unwrap().to_string()
                };
                assert_eq!(row("Dev"), "firing");
                assert_eq!(row("PROD"), "ok");
                assert!(v.dom.contains("Active alerts") && v.dom.contains("FIRING"), "the firing alert on top");
                let loads = v.urls.iter().filter(|u| **u == url).count();
                assert!(loads >= 2, "the board refreshed itself in place (its URL fetched {loads} time(s))");
            }
            "operation" => {
                assert!(v.dom.contains("data-drawn=\"true\""), "uPlot drew the charts");
                for label in ["Dev p95", "PROD p95", "budget (p95 5.00s)"] {
                    assert!(v.dom.contains(label), "the chart's legend names {label}");
                }
                assert!(v.dom.contains("u-legend"), "uPlot's legend is in the page");
            }
            "bottleneck" => {
                let marked = v.dom.split("class=\"bottleneck\"").nth(1).unwrap_or_default();
                assert!(marked.split("</strong>").next().unwrap_or_default().contains(SLOWED.1), "the bottleneck named");
                assert!(v.dom.contains("class=\"row bottleneck\""), "the waterfall marks it");
            }
            "compare" => assert!(v.dom.contains(&format!("data-operation=\"{}\" data-function=\"{}\" data-verdict=\"regression\"", SLOWED.1, SLOWED.0))),
            "alerts" => assert!(v.dom.contains("data-transition=\"firing\"")),
            _ => assert!(v.dom.contains("Collector health")),
        }
        for (w, h) in [(1280, 800), (390, 844)] {
            let png = shots.join(format!("{name}-{w}x{h}.png"));
            let colours = capture(dir.path(), &url, (w, h), &png);
            assert!(colours >= 16, "{} looks blank ({colours} colours)", png.display());
        }
    }
    // The README's picture of the board comes from here.
    if std::env::var("SENTINEL_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        std::fs::copy(shots.join("board-1280x800.png"), repo().join("docs/console-board.png")).unwrap();
    }
}

#[test]
fn with_a_token_the_console_asks_once_and_keeps_it_in_a_strict_cookie() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &console_config(&moto, "").replace("[http]\n", "[http]\napi_token = \"s3cret-token\"\n"));
    let url = |p: &str| daemon.url(p);

    let (status, head, body) = http_exchange("GET", &url("/"), None, &[]).unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("name=\"token\"") && body.contains("action=\"/ui/login\""), "the page asks for the token: {body}");
    assert!(head.to_ascii_lowercase().contains("content-security-policy: default-src 'self'"), "{head}");
    assert_eq!(http_get(&url("/ui/assets/console.css")).unwrap().0, 200, "assets hold no data");

    let form = |token: &str| format!("token={token}&next=%2Fui%2Falerts");
    let ctype = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, _, _) = http_exchange("POST", &url("/ui/login"), Some(&form("wrong")), &ctype).unwrap();
    assert_eq!(status, 401);
    let (status, head, _) = http_exchange("POST", &url("/ui/login"), Some(&form("s3cret-token")), &ctype).unwrap();
    assert_eq!(status, 303, "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("location: /ui/alerts"), "{head}");
    let cookie_line = head.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).expect("a cookie");
    assert!(cookie_line.contains("HttpOnly") && cookie_line.contains("SameSite=Strict"), "{cookie_line}");
    let cookie = cookie_line.split_once(':').unwrap().1.trim().split(';').next().unwrap().to_string();

    for page in ["/", "/ui/alerts", "/ui/health"] {
        let (status, _, body) = http_exchange("GET", &url(page), None, &[("Cookie", &cookie)]).unwrap();
        assert_eq!(status, 200, "{page}: {body}");
    }
    let (status, _, _) = http_exchange("GET", &url("/"), None, &[("Authorization", "Bearer s3cret-token")]).unwrap();
    assert_eq!(status, 200, "a bearer token opens it too");
    let (status, _, _) = http_exchange("GET", &url("/"), None, &[("Cookie", "sentinel_console=guess")]).unwrap();
    assert_eq!(status, 401);
    assert!(!daemon.logs().contains("s3cret-token"), "the token is never logged");
}
