//! No secret reaches the logs: not passwords, not session ids, not the
//! encryption key, not password hashes, even at debug level.

use crate::common;

use common::*;

#[tokio::test]
async fn sign_in_flow_logs_no_secret() {
    for db in TestDb::all().await {
        let (_d, dir) = data_dir();
        let password = "log-canary-password-7Q";
        let out = create_user(&db, &dir, "admin@example.com", "admin", password);
        assert!(out.status.success());
        let key = "q0hSgm3Qd8QqZlqJ8ZGrLz6jW2y1UvQ4bq7qXcS+0nE=";
        let first_admin_pw = "env-admin-canary-pw-9X";
        let hub = Hub::start_with(HubOptions {
            db: &db,
            data_dir: &dir,
            env: vec![
                ("RUST_LOG", "debug".into()),
                ("SPICEHUB_SECRET_KEY", key.into()),
                ("SPICEHUB_ADMIN_EMAIL", "first@example.com".into()),
                ("SPICEHUB_ADMIN_PASSWORD", first_admin_pw.into()),
            ],
        });
        let c = client();
        assert_eq!(
            sign_in(&c, &hub, "admin@example.com", "wrong-canary-guess-1")
                .await
                .status(),
            401
        );
        let ok = sign_in(&c, &hub, "admin@example.com", password).await;
        assert!(ok.status().is_redirection());
        let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
        let session_id = cookie
            .split(';')
            .next()
            .and_then(|kv| kv.split_once('='))
            .map(|(_, v)| v.to_owned())
            .expect("session cookie value");
        assert!(c
            .get(format!("{}/registries", hub.url))
            .send()
            .await
            .unwrap()
            .status()
            .is_success());
        let logs = hub.logs();
        let status = hub.stop();
        assert!(status.success());
        assert!(logs.lines().count() > 10, "debug logging was on: {logs}");
        for (what, secret) in [
            ("password", password),
            ("wrong password", "wrong-canary-guess-1"),
            ("first admin password", first_admin_pw),
            ("session id", session_id.as_str()),
            ("secret key", key),
        ] {
            assert!(
                !logs.contains(secret),
                "{}: {what} appears in the logs",
                db.label
            );
        }
        assert!(
            !logs.contains("$argon2id$"),
            "{}: a password hash appears in the logs",
            db.label
        );
    }
}
