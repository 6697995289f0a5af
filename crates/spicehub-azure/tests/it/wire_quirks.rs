// Wire quirks the emulator does not produce, served by a tiny canned HTTP server:
// continuation token in the body, a server that ignores `$top`/`$skip`, an HTML
// 200 sign-in page, `X-RateLimit-Remaining: 0` without `Retry-After`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::SecretString;
use spicehub_azure::retry::ThrottleCause;
use spicehub_azure::{
    AzureClient, ClientConfig, Credential, RetryPolicy, ServicePrincipal, TokenManager,
    TokenManagerConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn json(status: u16, body: serde_json::Value) -> Reply {
    Reply {
        status,
        headers: vec![(
            "Content-Type".into(),
            "application/json; charset=utf-8".into(),
        )],
        body: body.to_string(),
    }
}

type Log = Arc<Mutex<Vec<(String, std::time::Instant)>>>;

/// Serves `handler(request_target, n)` (n = 0-based request number) until the test ends.
async fn serve(handler: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> (String, Log) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let handler = handler.clone();
            let log = log2.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let n = {
                    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                    l.push((target.clone(), std::time::Instant::now()));
                    l.len() - 1
                };
                let r = handler(&target, n);
                let mut out = format!(
                    "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    r.status,
                    r.body.len()
                );
                for (k, v) in &r.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&r.body);
                let _ = sock.write_all(out.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), log)
}

fn client(base: &str, page: u32) -> AzureClient {
    // A PAT needs no token endpoint.
    let cred = Credential::personal_access_token(SecretString::from("pat"))
        .unwrap_or_else(|e| panic!("{e}"));
    let sp = ServicePrincipal::with_authority(base, "contoso.onmicrosoft.com", "c", cred)
        .unwrap_or_else(|e| panic!("{e}"));
    let tokens = TokenManager::new(TokenManagerConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let cfg = ClientConfig {
        devops_url: base.to_string(),
        projects_page_size: page,
        retry: RetryPolicy::fast(),
        ..ClientConfig::default()
    };
    AzureClient::new(cfg, tokens, sp, "org").unwrap_or_else(|e| panic!("{e}"))
}

fn projects(range: std::ops::Range<usize>) -> Vec<serde_json::Value> {
    range
        .map(|i| serde_json::json!({"id": format!("p{i}"), "name": format!("P{i}")}))
        .collect()
}

fn query_param<'a>(target: &'a str, key: &str) -> Option<&'a str> {
    target
        .split_once('?')?
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

#[tokio::test]
async fn continuation_token_in_the_body_is_followed() {
    let (base, log) = serve(|target, _| {
        let (items, next) = match query_param(target, "continuationToken") {
            None => (projects(0..3), Some("A")),
            Some("A") => (projects(3..6), Some("B")),
            _ => (projects(6..7), None),
        };
        json(
            200,
            serde_json::json!({"count": items.len(), "value": items, "continuationToken": next}),
        )
    })
    .await;
    let got = client(&base, 3)
        .list_projects()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        got.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["p0", "p1", "p2", "p3", "p4", "p5", "p6"]
    );
    assert_eq!(log.lock().map(|l| l.len()).unwrap_or(0), 3);
}

#[tokio::test]
async fn a_server_ignoring_top_and_skip_does_not_loop() {
    let (base, log) = serve(|_, _| {
        json(
            200,
            serde_json::json!({"count": 5, "value": projects(0..5)}),
        )
    })
    .await;
    let got = client(&base, 3)
        .list_projects()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.len(), 5);
    assert!(log.lock().map(|l| l.len()).unwrap_or(0) <= 2);
}

#[tokio::test]
async fn offset_paging_when_no_token_and_full_pages() {
    let (base, log) = serve(|target, _| {
        let skip: usize = query_param(target, "$skip")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let items = projects(skip..(skip + 3).min(8));
        json(
            200,
            serde_json::json!({"count": items.len(), "value": items}),
        )
    })
    .await;
    let got = client(&base, 3)
        .list_projects()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.len(), 8);
    let targets: Vec<String> = log
        .lock()
        .map(|l| l.iter().map(|(t, _)| t.clone()).collect())
        .unwrap_or_default();
    assert_eq!(targets.len(), 3, "{targets:?}");
    assert!(
        targets[1].contains("$skip=3") && targets[2].contains("$skip=6"),
        "{targets:?}"
    );
}

#[tokio::test]
async fn html_200_is_a_sign_in_page_retried_once() {
    let (base, log) = serve(|_, _| Reply {
        status: 200,
        headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
        body: "<html><title>Azure DevOps Services | Sign In</title></html>".into(),
    })
    .await;
    let err = client(&base, 100)
        .list_projects()
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert_eq!(err.code(), "sign_in_page", "{err}");
    assert_eq!(
        log.lock().map(|l| l.len()).unwrap_or(0),
        2,
        "one retry with a fresh authorization"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (base, log) = serve(|_, _| Reply {
        status: 302,
        headers: vec![("Location".into(), "/_signin?realm=dev.azure.com".into())],
        body: String::new(),
    })
    .await;
    let err = client(&base, 100)
        .list_projects()
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert_eq!(err.code(), "sign_in_page");
    let targets: Vec<String> = log
        .lock()
        .map(|l| l.iter().map(|(t, _)| t.clone()).collect())
        .unwrap_or_default();
    assert!(
        targets.iter().all(|t| !t.contains("_signin")),
        "{targets:?}"
    );
}

#[tokio::test]
async fn exhausted_rate_limit_waits_until_reset() {
    let (base, log) = serve(|_, n| {
        let mut r = json(
            200,
            serde_json::json!({"count": 1, "value": projects(0..1)}),
        );
        if n == 0 {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            r.headers.push(("X-RateLimit-Remaining".into(), "0".into()));
            r.headers
                .push(("X-RateLimit-Reset".into(), (now + 2).to_string()));
        }
        r
    })
    .await;
    let c = client(&base, 100);
    c.list_projects().await.unwrap_or_else(|e| panic!("{e}"));
    c.list_projects().await.unwrap_or_else(|e| panic!("{e}"));
    let ev = c.throttle_events();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].cause, ThrottleCause::RateLimitReset);
    // The wait runs to the reset second from the exact now: just under 1 s
    // when a second boundary passed between the server's clock and ours.
    assert!(
        ev[0].requested >= Duration::from_millis(900) && ev[0].requested <= Duration::from_secs(2),
        "{ev:?}"
    );
    let times: Vec<std::time::Instant> = log
        .lock()
        .map(|l| l.iter().map(|(_, t)| *t).collect())
        .unwrap_or_default();
    assert_eq!(times.len(), 2);
    assert!(
        times[1].duration_since(times[0]) >= ev[0].requested,
        "second request waited for the reset"
    );
}

#[tokio::test]
async fn unknown_organization_bare_404_on_a_repository_url() {
    let (base, _) = serve(|_, _| Reply {
        status: 404,
        headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
        body: "The resource cannot be found.".into(),
    })
    .await;
    let err = client(&base, 100)
        .get_repository("p", "r")
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert_eq!(err.code(), "organization_not_found", "{err}");
}
