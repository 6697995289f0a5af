//! What an anonymous client on the internet can send the hub, over real
//! HTTP (and raw TCP) against the real binary: made-up methods, floods of
//! wrong passwords and webhook posts, oversized input, open redirects, slow
//! and idle connections. Each test failed on the hub before it was hardened.

use crate::common;
use crate::webhook::{basic, push, seed, PASSWORD, REPO, USER};

use std::net::IpAddr;
use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN: &str = "admin@example.com";
const ADMIN_PW: &str = "admin-password-123";

fn seed_admin(db: &TestDb, dir: &std::path::Path) {
    let out = create_user(db, dir, ADMIN, "admin", ADMIN_PW);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn host_port(hub: &Hub) -> String {
    hub.url.trim_start_matches("http://").to_owned()
}

async fn metrics(hub: &Hub) -> String {
    reqwest::get(format!("{}/metrics", hub.url))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body")
}

/// A raw HTTP/1.1 request with any method; returns the status line.
async fn raw_request(hub: &Hub, method: &str) -> String {
    let mut stream = TcpStream::connect(host_port(hub)).await.expect("connect");
    let request = format!(
        "{method} /signin HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        host_port(hub)
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Item 1: a label set is kept for the life of the process, so the method
/// label must never be what the client sent.
#[tokio::test]
async fn made_up_methods_do_not_grow_the_metrics() {
    let db = TestDb::sqlite();
    let (_d, dir) = data_dir();
    let hub = Hub::start(&db, &dir);
    let before = metrics(&hub).await.len();
    for i in 0..300 {
        // A valid token of 4 KiB, different each time.
        let method = format!("X{i:04}{}", "Q".repeat(4096));
        let status = raw_request(&hub, &method).await;
        assert!(status.starts_with("HTTP/1.1"), "answered: {status}");
    }
    let after = metrics(&hub).await;
    assert!(!after.contains("X0001QQQQ"), "a raw method became a label");
    assert!(after.contains("method=\"other\""), "{after}");
    assert!(
        after.len() < before + 16 * 1024,
        "/metrics grew from {before} to {} bytes",
        after.len()
    );
}

/// Item 1: `/metrics` is for the configured addresses or the token holder.
#[tokio::test]
async fn metrics_are_only_shown_to_allowed_addresses_or_the_token() {
    let db = TestDb::sqlite();
    let (_d, dir) = data_dir();
    let hub = Hub::start_with(HubOptions {
        db: &db,
        data_dir: &dir,
        env: vec![
            ("SPICEHUB_METRICS_ALLOW", "10.0.0.0/8".into()),
            ("SPICEHUB_METRICS_TOKEN", "metrics-token-0123456789".into()),
        ],
    });
    let c = reqwest::Client::new();
    let url = format!("{}/metrics", hub.url);
    let anonymous = c.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::NOT_FOUND);
    let wrong = c.get(&url).bearer_auth("guess").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::NOT_FOUND);
    let ok = c
        .get(&url)
        .bearer_auth("metrics-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok
        .text()
        .await
        .unwrap()
        .contains("spicehub_http_requests_total"));
    assert!(!hub.logs().contains("metrics-token-0123456789"));
}

/// Item 2: attempts are reserved before the password is hashed, so a
/// burst gets no more tries than a slow series.
#[tokio::test]
async fn parallel_wrong_passwords_get_no_more_tries_than_serial_ones() {
    for db in TestDb::all().await {
        let (_d, dir) = data_dir();
        seed_admin(&db, &dir);
        let hub = Hub::start(&db, &dir);
        let attempts = (0..40).map(|_| {
            let c = client();
            let hub = &hub;
            async move { sign_in(&c, hub, ADMIN, "guess-guess-guess").await.status() }
        });
        let statuses = futures_util::future::join_all(attempts).await;
        let tried = statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count();
        assert!(
            tried <= 5,
            "{}: {tried} of 40 parallel guesses were tried: {statuses:?}",
            db.label
        );
        assert!(statuses
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS));
    }
}

/// Item 2: password checks are bounded (503 + Retry-After when full), and
/// behind a trusted proxy each client is counted on its own address (else
/// twenty failures from anyone would lock everyone out).
#[tokio::test]
async fn password_checks_are_bounded_and_clients_behind_a_proxy_are_told_apart() {
    for db in TestDb::all().await {
        let (_d, dir) = data_dir();
        let hub = Hub::start_with(HubOptions {
            db: &db,
            data_dir: &dir,
            env: vec![
                ("SPICEHUB_SIGNIN_CONCURRENCY", "1".into()),
                ("SPICEHUB_TRUSTED_PROXIES", "127.0.0.1".into()),
            ],
        });
        let attempts = (0..200).map(|i| {
            let hub = &hub;
            async move {
                let r = client()
                    .post(format!("{}/api/sign_in", hub.url))
                    .header("Origin", &hub.url)
                    .header("Accept", "text/html")
                    .header(
                        "X-Forwarded-For",
                        format!("6.6.6.6, 198.51.100.{}", i % 250),
                    )
                    .form(&[
                        ("email", format!("user{i}@example.com")),
                        ("password", "guess-guess-guess".into()),
                        ("next", "/".into()),
                    ])
                    .send()
                    .await
                    .expect("sign-in");
                (r.status(), r.headers().get("retry-after").cloned())
            }
        });
        let answers = futures_util::future::join_all(attempts).await;
        let busy: Vec<_> = answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
            .collect();
        assert!(
            !busy.is_empty(),
            "{}: 200 checks at once on 1 slot were all queued",
            db.label
        );
        assert!(busy.iter().all(|(_, retry)| retry.is_some()));
        // One failure per forwarded address: none of them is throttled.
        assert!(
            answers
                .iter()
                .all(|(s, _)| *s == StatusCode::UNAUTHORIZED
                    || *s == StatusCode::SERVICE_UNAVAILABLE),
            "{}: {:?}",
            db.label,
            answers.iter().map(|(s, _)| s).collect::<Vec<_>>()
        );
    }
}

/// Item 3: an oversized e-mail or password is refused before the database,
/// and what is stored per attempt has a fixed size.
#[tokio::test]
async fn oversized_sign_in_input_is_refused_and_nothing_of_it_is_kept() {
    for db in TestDb::all().await {
        let (_d, dir) = data_dir();
        let hub = Hub::start(&db, &dir);
        let c = client();
        let long_email = format!("{}@example.com", "a".repeat(1_900_000));
        let r = sign_in(&c, &hub, &long_email, "guess-guess-guess").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{}", db.label);
        assert!(r.text().await.unwrap().contains("at most 254"));
        let long_password = "p".repeat(2048);
        let r = sign_in(&c, &hub, "x@example.com", &long_password).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);

        let handle = db.open().await;
        assert_eq!(
            handle.login_throttle_rows().await.unwrap(),
            0,
            "{}",
            db.label
        );
        // An ordinary failure stores fixed-size keys only.
        let wrong = sign_in(&c, &hub, "someone@example.com", "guess-guess-guess").await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let keys: Vec<String> = sqlx::query_scalar("SELECT key_hash FROM login_throttle")
            .fetch_all(handle.pool())
            .await
            .unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys.iter().all(|k| k.len() == 64 && !k.contains('@')));
    }
}

/// Item 4: `next` cannot send a signed-in user to another site, and CR/LF
/// in it is not a crash.
#[tokio::test]
async fn sign_in_never_redirects_to_another_site() {
    let db = TestDb::sqlite();
    let (_d, dir) = data_dir();
    seed_admin(&db, &dir);
    let hub = Hub::start(&db, &dir);
    for next in [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\nSet-Cookie: planted=1",
        "/\\evil.example",
        "//evil.example",
        "https://evil.example/",
    ] {
        let c = client();
        let r = c
            .post(format!("{}/api/sign_in", hub.url))
            .header("Origin", &hub.url)
            .header("Accept", "text/html")
            .form(&[("email", ADMIN), ("password", ADMIN_PW), ("next", next)])
            .send()
            .await
            .unwrap_or_else(|e| panic!("{next:?}: the hub reset the connection: {e}"));
        assert!(r.status().is_redirection(), "{next:?}: {}", r.status());
        assert_eq!(r.headers()["location"], "/", "{next:?}");
        assert!(r.headers().get("planted").is_none());
    }
    // Signed in already: the page redirects at once, to the same site.
    let c = client();
    assert!(sign_in(&c, &hub, ADMIN, ADMIN_PW)
        .await
        .status()
        .is_redirection());
    let page = c
        .get(format!("{}/signin?next=%2F%09%2Fevil.example", hub.url))
        .send()
        .await
        .unwrap();
    if let Some(location) = page.headers().get("location") {
        assert_eq!(location, "/");
    }
    let html = page.text().await.unwrap();
    assert!(!html.contains("evil.example\""), "{html}");
}

/// Item 5: a flood of bad webhook posts from one address costs no database
/// reads and is answered 429, while a real delivery from elsewhere is
/// answered 200 during it.
#[tokio::test]
async fn a_real_delivery_gets_through_a_flood_of_bad_ones() {
    for db in TestDb::all().await {
        let (_d, dir) = data_dir();
        seed(&db.url, &dir, REPO).await;
        let hub = Hub::start(&db, &dir);
        let url = format!("{}/gateway/public/sync", hub.url);
        let reads_before = read_counter(&metrics(&hub).await);
        let started = std::time::Instant::now();

        let flood = (0..200).map(|conn| {
            let url = url.clone();
            async move {
                let c = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap();
                let mut counts = [0usize; 2];
                for i in 0..100 {
                    let status = c
                        .post(&url)
                        .header("Authorization", basic(USER, &format!("guess-{conn}-{i}")))
                        .body("{}")
                        .send()
                        .await
                        .map(|r| r.status());
                    match status {
                        Ok(StatusCode::TOO_MANY_REQUESTS) => counts[1] += 1,
                        Ok(StatusCode::UNAUTHORIZED) => counts[0] += 1,
                        other => panic!("bad post answered {other:?}"),
                    }
                }
                counts
            }
        });
        let flood = tokio::spawn(futures_util::future::join_all(flood));

        // The real delivery comes from another address (all of 127/8 is
        // this machine).
        let real = reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 0, 2]))
            .build()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let delivered = real
            .post(&url)
            .header("Authorization", basic(USER, PASSWORD))
            .json(&push(
                "c0a8e3f0-0000-4000-8000-00000000f10d",
                REPO,
                "refs/heads/main",
                &"a".repeat(40),
            ))
            .send()
            .await
            .expect("real delivery");
        assert_eq!(delivered.status(), StatusCode::OK, "{}", db.label);

        let counts = flood.await.unwrap();
        let unauthorized: usize = counts.iter().map(|c| c[0]).sum();
        let refused: usize = counts.iter().map(|c| c[1]).sum();
        assert_eq!(unauthorized + refused, 20_000);
        assert!(
            refused > 19_000,
            "{}: only {refused} of 20,000 bad posts were refused before the password check",
            db.label
        );
        // At most one read per cache lifetime (2 s), however many posts.
        let reads = read_counter(&metrics(&hub).await) - reads_before;
        let allowed = 2 + started.elapsed().as_secs() / 2;
        assert!(
            reads <= allowed,
            "{}: {reads} credential reads for 20,000 bad posts (allowed {allowed})",
            db.label
        );
    }
}

fn read_counter(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with("spicehub_webhook_credential_reads_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Item 6: a client that does not finish its headers is disconnected.
#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let db = TestDb::sqlite();
    let (_d, dir) = data_dir();
    let hub = Hub::start_with(HubOptions {
        db: &db,
        data_dir: &dir,
        env: vec![("SPICEHUB_HEADER_TIMEOUT_SECS", "1".into())],
    });
    let mut stream = TcpStream::connect(host_port(&hub)).await.unwrap();
    stream
        .write_all(b"GET /signin HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "the connection was still open after 20 s");
}

/// Item 6: past the connection cap, a new client waits until one ends.
#[tokio::test]
async fn connections_past_the_cap_wait_for_a_free_one() {
    let db = TestDb::sqlite();
    let (_d, dir) = data_dir();
    let hub = Hub::start_with(HubOptions {
        db: &db,
        data_dir: &dir,
        env: vec![
            ("SPICEHUB_MAX_CONNECTIONS", "2".into()),
            ("SPICEHUB_HEADER_TIMEOUT_SECS", "60".into()),
        ],
    });
    let idle: Vec<TcpStream> = vec![
        TcpStream::connect(host_port(&hub)).await.unwrap(),
        TcpStream::connect(host_port(&hub)).await.unwrap(),
    ];
    let url = format!("{}/healthz", hub.url);
    let waiting = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !waiting.is_finished(),
        "a third connection was served while two held the cap of 2"
    );
    drop(idle);
    let status = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("served once a slot was free")
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
}

/// Item 5: session cookies are signed, so a made-up one is refused before
/// the session store is asked (it used to cost a database read each).
#[tokio::test]
async fn made_up_session_cookies_are_refused_by_their_signature() {
    let db = TestDb::sqlite();
    let (_d, dir) = data_dir();
    seed_admin(&db, &dir);
    let hub = Hub::start(&db, &dir);
    let c = client();
    let signed_in = sign_in(&c, &hub, ADMIN, ADMIN_PW).await;
    let cookie = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("spicehub_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let page = |cookie: String| {
        let url = format!("{}/registries", hub.url);
        async move {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .get(url)
                .header("Cookie", format!("spicehub_session={cookie}"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(page(cookie.clone()).await, StatusCode::OK);
    // The session id alone (what an unsigned cookie held) is not enough.
    let (_signature, id) = cookie.split_at(44);
    assert!(page(id.to_owned()).await.is_redirection());
    // Nor is a made-up id with a made-up signature.
    let forged = format!("{}{}", "A".repeat(44), id);
    assert!(page(forged).await.is_redirection());
}
