//! Sign-in, sessions, roles, CSRF and throttling, over HTTP against the real
//! binary, on SQLite and PostgreSQL.

use crate::common;

use common::*;
use reqwest::StatusCode;

const ADMIN: &str = "admin@example.com";
const ADMIN_PW: &str = "admin-password-123";
const VIEWER: &str = "viewer@example.com";
const VIEWER_PW: &str = "viewer-password-123";

fn seed_users(db: &TestDb, dir: &std::path::Path) {
    for (email, role, pw) in [(ADMIN, "admin", ADMIN_PW), (VIEWER, "viewer", VIEWER_PW)] {
        let out = create_user(db, dir, email, role, pw);
        assert!(
            out.status.success(),
            "admin create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

async fn get(client: &reqwest::Client, hub: &Hub, path: &str) -> reqwest::Response {
    client
        .get(format!("{}{path}", hub.url))
        .send()
        .await
        .expect("GET")
}

#[tokio::test]
async fn sign_in_succeeds_with_the_right_password_only() {
    for db in TestDb::all().await {
        let (_d, dir) = data_dir();
        seed_users(&db, &dir);
        let hub = Hub::start(&db, &dir);
        let c = client();

        let wrong = sign_in(&c, &hub, ADMIN, "wrong-password!").await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{}", db.label);
        assert!(wrong
            .text()
            .await
            .unwrap()
            .contains("Wrong e-mail or password"));
        assert_eq!(
            get(&c, &hub, "/registries").await.status(),
            StatusCode::SEE_OTHER
        );

        // A browser that has not run the wasm bundle yet posts the plain form
        // and follows the redirect back: the page it lands on says why.
        let plain = c
            .post(format!("{}/api/sign_in", hub.url))
            .header("Origin", &hub.url)
            .header("Referer", format!("{}/signin", hub.url))
            .header("Accept", "text/html")
            .form(&[
                ("email", ADMIN),
                ("password", "wrong-password!"),
                ("next", ""),
            ])
            .send()
            .await
            .unwrap();
        assert!(
            plain.status().is_redirection(),
            "{}: {}",
            db.label,
            plain.status()
        );
        let back = plain.headers()["location"].to_str().unwrap().to_owned();
        let back = back.trim_start_matches(&hub.url).to_owned();
        assert!(back.starts_with("/signin"), "{back}");
        let page = get(&c, &hub, &back).await;
        assert_eq!(page.status(), StatusCode::OK, "{}", db.label);
        let html = page.text().await.unwrap();
        assert!(
            html.contains(r#"role="alert""#) && html.contains("Wrong e-mail or password"),
            "{}: the refusal shows on the page it lands on",
            db.label
        );
        assert!(
            !html.contains("wrong-password!"),
            "the password is not echoed"
        );

        let unknown = sign_in(&c, &hub, "nobody@example.com", ADMIN_PW).await;
        assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED, "{}", db.label);

        let ok = sign_in(&c, &hub, ADMIN, ADMIN_PW).await;
        assert!(
            ok.status().is_redirection(),
            "{}: {}",
            db.label,
            ok.status()
        );
        assert_eq!(ok.headers()["location"], "/registries");
        let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(
            !cookie.contains("Secure"),
            "plain-http hub must not set Secure: {cookie}"
        );

        let page = get(&c, &hub, "/registries").await;
        assert_eq!(page.status(), StatusCode::OK, "{}", db.label);
        let html = page.text().await.unwrap();
        assert!(html.contains(ADMIN), "page names the signed-in user");
        assert!(html.contains("Git Providers"), "admin sees the admin tabs");

        // Signing out ends the session on the server, not only in the browser.
        let out = c
            .post(format!("{}/api/sign_out", hub.url))
            .header("Origin", &hub.url)
            .header("Accept", "text/html")
            .send()
            .await
            .unwrap();
        assert!(out.status().is_redirection(), "{}", out.status());
        assert_eq!(
            get(&c, &hub, "/registries").await.status(),
            StatusCode::SEE_OTHER
        );
    }
}

#[tokio::test]
async fn pages_need_a_session_and_send_you_back_after_sign_in() {
    for db in TestDb::all().await {
        let (_d, dir) = data_dir();
        let hub = Hub::start(&db, &dir);
        let c = client();
        for path in [
            "/",
            "/providers",
            "/repositories",
            "/registries",
            "/no/such/page",
        ] {
            let r = get(&c, &hub, path).await;
            assert_eq!(r.status(), StatusCode::SEE_OTHER, "{} {path}", db.label);
            let location = r.headers()["location"].to_str().unwrap();
            assert!(location.starts_with("/signin?next="), "{location}");
        }
        let r = get(&c, &hub, "/repositories?filter=a").await;
        assert_eq!(
            r.headers()["location"],
            "/signin?next=%2Frepositories%3Ffilter%3Da"
        );
        let signin = get(&c, &hub, "/signin").await;
        assert_eq!(signin.status(), StatusCode::OK);
        assert!(signin.text().await.unwrap().contains("Sign in to spicehub"));
        // Server functions answer anonymous callers without data.
        let who = c
            .post(format!("{}/api/current_user", hub.url))
            .header("Origin", &hub.url)
            .send()
            .await
            .unwrap();
        assert_eq!(who.status(), StatusCode::OK);
        assert_eq!(who.text().await.unwrap(), "null");
    }
}

#[tokio::test]
async fn viewers_cannot_open_admin_pages() {
    for db in TestDb::all().await {
        let (_d, dir) = data_dir();
        seed_users(&db, &dir);
        let hub = Hub::start(&db, &dir);
        let c = client();
        assert!(sign_in(&c, &hub, VIEWER, VIEWER_PW)
            .await
            .status()
            .is_redirection());
        for path in ["/providers", "/repositories"] {
            let r = get(&c, &hub, path).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{} {path}", db.label);
            assert!(r.text().await.unwrap().contains("Admins only"));
        }
        let r = get(&c, &hub, "/registries").await;
        assert_eq!(r.status(), StatusCode::OK);
        let html = r.text().await.unwrap();
        assert!(
            !html.contains("href=\"/providers\""),
            "viewer nav has no admin tabs"
        );
    }
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    for db in TestDb::all().await {
        let (_d, dir) = data_dir();
        seed_users(&db, &dir);
        let hub = Hub::start(&db, &dir);
        let c = client();
        let form = [("email", ADMIN), ("password", ADMIN_PW)];
        let url = format!("{}/api/sign_in", hub.url);

        let none = c.post(&url).form(&form).send().await.unwrap();
        assert_eq!(
            none.status(),
            StatusCode::FORBIDDEN,
            "{}: no Origin",
            db.label
        );
        let evil = c
            .post(&url)
            .header("Origin", "http://evil.example")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            evil.status(),
            StatusCode::FORBIDDEN,
            "{}: foreign Origin",
            db.label
        );
        let evil_ref = c
            .post(&url)
            .header("Referer", "http://evil.example/page")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(evil_ref.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            get(&c, &hub, "/registries").await.status(),
            StatusCode::SEE_OTHER,
            "nothing signed in"
        );

        let same = c
            .post(&url)
            .header("Referer", format!("{}/signin", hub.url))
            .header("Accept", "text/html")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(
            same.status().is_redirection(),
            "same-origin Referer accepted: {}",
            same.status()
        );
    }
}

#[tokio::test]
async fn repeated_failures_lock_the_account_and_the_address() {
    for db in TestDb::all().await {
        let (_d, dir) = data_dir();
        seed_users(&db, &dir);
        let hub = Hub::start(&db, &dir);
        let c = client();
        for _ in 0..5 {
            assert_eq!(
                sign_in(&c, &hub, ADMIN, "guess-guess-guess").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        // Locked: even the right password is refused for now.
        let locked = sign_in(&c, &hub, ADMIN, ADMIN_PW).await;
        assert_eq!(
            locked.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            db.label
        );
        let retry: i64 = locked.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry > 0 && retry <= 15 * 60, "retry-after {retry}");
        assert!(locked
            .text()
            .await
            .unwrap()
            .contains("Too many failed sign-in attempts"));

        // Another account is not locked by the first one's failures...
        assert!(sign_in(&c, &hub, VIEWER, VIEWER_PW)
            .await
            .status()
            .is_redirection());
        // ...but one address guessing across many accounts is stopped too.
        for i in 0..15 {
            let s = sign_in(&c, &hub, &format!("u{i}@example.com"), "guess-guess-guess")
                .await
                .status();
            assert_eq!(s, StatusCode::UNAUTHORIZED, "attempt {i}");
        }
        let blocked = sign_in(&c, &hub, VIEWER, VIEWER_PW).await;
        assert_eq!(
            blocked.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            db.label
        );
    }
}

#[tokio::test]
async fn sessions_survive_a_restart() {
    for db in TestDb::all().await {
        let (_d, dir) = data_dir();
        seed_users(&db, &dir);
        let hub = Hub::start(&db, &dir);
        let c = client();
        assert!(sign_in(&c, &hub, ADMIN, ADMIN_PW)
            .await
            .status()
            .is_redirection());
        let status = hub.stop();
        assert!(status.success(), "graceful stop exits 0, got {status}");

        let hub = Hub::start(&db, &dir);
        // Same cookie jar, new process (new port: cookies are per host, not port).
        let r = get(&c, &hub, "/registries").await;
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "{}: session kept across restart",
            db.label
        );
        assert!(hub.logs().contains("spicehub listening"));
    }
}

#[tokio::test]
async fn operations_endpoints_and_security_headers() {
    for db in TestDb::all().await {
        let (_d, dir) = data_dir();
        let hub = Hub::start(&db, &dir);
        let c = client();
        let health = get(&c, &hub, "/healthz").await;
        assert_eq!(health.status(), StatusCode::OK);
        let body: serde_json::Value = health.json().await.unwrap();
        assert_eq!(body["database"], "ok", "{}", db.label);

        let page = c
            .get(format!("{}/signin", hub.url))
            .header("x-request-id", "test-request-42")
            .send()
            .await
            .unwrap();
        let h = page.headers();
        assert_eq!(h["x-request-id"], "test-request-42");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "same-origin");
        let csp = h["content-security-policy"].to_str().unwrap().to_owned();
        assert!(
            csp.contains("'wasm-unsafe-eval'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|s| s.split('\'').next())
            .expect("page CSP carries a nonce")
            .to_owned();
        let html = page.text().await.unwrap();
        assert!(
            html.contains(&format!("nonce=\"{nonce}\"")),
            "hydration script carries the CSP nonce"
        );

        let metrics = get(&c, &hub, "/metrics").await.text().await.unwrap();
        assert!(
            metrics.contains(
                "spicehub_http_requests_total{method=\"GET\",route=\"/signin\",status=\"200\"}"
            ),
            "{metrics}"
        );
        assert!(metrics.contains("spicehub_http_request_duration_seconds_bucket"));
        // The line is written as the response finishes and read from the
        // child's pipe by another thread: give it a moment under load.
        let logged = || hub.logs().contains("request_id=test-request-42");
        let started = std::time::Instant::now();
        while !logged() && started.elapsed() < std::time::Duration::from_secs(10) {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(logged(), "request id in the log line");
    }
}
