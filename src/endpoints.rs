//! Where the AWS SDK would send a request, as the SDK itself resolves it: the client config
//! built from an `SdkConfig` (so `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, profile
//! `endpoint_url`s, `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` and the region's endpoint rules all
//! count), read off a request that is stopped before it is signed or sent. `simulate` uses it
//! to refuse writing to anything but this machine unless told otherwise.

use aws_config::SdkConfig;
use aws_sdk_lambda::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_lambda::config::{ConfigBag, Intercept, RuntimeComponents};
use std::sync::{Arc, Mutex};

/// Records the URI of the request it sees, then stops it (nothing is signed or sent).
#[derive(Debug, Clone, Default)]
struct StopAndRecord(Arc<Mutex<Option<String>>>);

/// The error that stops the request; never shown.
#[derive(Debug)]
struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped before signing: only the endpoint was wanted")
    }
}

impl std::error::Error for Stopped {}

impl Intercept for StopAndRecord {
    fn name(&self) -> &'static str {
        "StopAndRecord"
    }

    fn read_before_signing(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_lambda::error::BoxError> {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(context.request().uri().to_string());
        }
        Err(Box::new(Stopped))
    }
}

/// The URL each service `simulate` writes to would be called at (service name, URL), or
/// the reason it could not be told (no credentials to start a request with, say).
pub async fn resolved(sdk: &SdkConfig) -> Vec<(&'static str, Result<String, String>)> {
    let mut out = Vec::new();
    macro_rules! probe {
        ($name:literal, $request:expr) => {{
            let rec = StopAndRecord::default();
            let result = $request.customize().interceptor(rec.clone()).send().await;
            let url = rec.0.lock().ok().and_then(|s| s.clone());
            out.push(($name, url.ok_or_else(|| match result {
                Ok(_) => "the request was not stopped".to_string(),
                Err(e) => format!("{}", aws_sdk_lambda::error::DisplayErrorContext(e)),
            })));
        }};
    }
    probe!("iam", aws_sdk_iam::Client::new(sdk).list_roles());
    probe!("lambda", aws_sdk_lambda::Client::new(sdk).list_functions());
    probe!("logs", aws_sdk_cloudwatchlogs::Client::new(sdk).describe_log_groups());
    probe!("xray", aws_sdk_xray::Client::new(sdk).get_trace_segment_destination());
    out
}

/// Is this URL's host on this machine (`localhost`, 127.0.0.0/8, `::1`)?
pub fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(r) = authority.strip_prefix('[') {
        r.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_are_local() {
        for ok in ["http://127.0.0.1:5000", "http://localhost:4566/", "https://127.10.0.3", "http://[::1]:5000", "http://user@127.0.0.1:1"] {
            assert!(is_loopback(ok), "{ok}");
        }
        for bad in ["https://logs.us-east-1.amazonaws.com", "http://10.0.0.5:5000", "http://127.0.0.1.example.com", "http://[::2]:1", ""] {
            assert!(!is_loopback(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_sdk_resolution_is_followed_and_nothing_is_sent() {
        use aws_config::{BehaviorVersion, Region};
        let creds = aws_sdk_lambda::config::Credentials::new("AKIDTEST", "secret", None, None, "test");
        // An explicit endpoint: every service goes there (port 9 would refuse: nothing is sent).
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_lambda::config::SharedCredentialsProvider::new(creds.clone()))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        for (service, url) in resolved(&sdk).await {
            assert_eq!(url.as_deref().map(|u| u.starts_with("http://127.0.0.1:9")), Ok(true), "{service}: {url:?}");
        }
        // No endpoint: the region's AWS endpoints.
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_lambda::config::SharedCredentialsProvider::new(creds))
            .build();
        let got = resolved(&sdk).await;
        assert_eq!(got.len(), 4);
        for (service, url) in got {
            let url = url.unwrap();
            assert!(url.contains("amazonaws.com") && !is_loopback(&url), "{service}: {url}");
        }
    }
}
