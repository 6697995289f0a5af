// The demo dataset: credentials, organizations and the Python repositories the hub parses.

use ado_emulator::{demo, start, testkit, EmulatorConfig};
use serde_json::Value;

async fn token(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
    http.post(url).form(form).send().await.unwrap()
}

#[tokio::test]
async fn demo_dataset_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start(
        EmulatorConfig::demo(dir.path().to_path_buf()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let http = crate::common::client();
    let scope = "499b84ac-1321-427f-aa17-267ca6975798/.default";
    let form = [
        ("client_id", demo::CLIENT_ID),
        ("client_secret", demo::CLIENT_SECRET),
        ("scope", scope),
        ("grant_type", "client_credentials"),
    ];
    let r = token(&http, &emu.token_url(demo::TENANT_DOMAIN), &form).await;
    assert_eq!(r.status(), 200);
    let t = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // The expired secret is refused with 7000222.
    let expired = [
        ("client_id", demo::CLIENT_ID),
        ("client_secret", demo::EXPIRED_SECRET),
        ("scope", scope),
        ("grant_type", "client_credentials"),
    ];
    let v: Value = token(&http, &emu.token_url(demo::TENANT_ID), &expired)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["error_codes"][0], 7000222);
    // Certificate credential of the demo app.
    let assertion =
        testkit::AssertionBuilder::new(demo::CLIENT_ID, &emu.token_url(demo::TENANT_ID))
            .sign(testkit::REGISTERED_KEY_PEM, testkit::REGISTERED_CERT_PEM)
            .unwrap();
    let r = token(
        &http,
        &emu.token_url(demo::TENANT_ID),
        &[
            ("client_id", demo::CLIENT_ID),
            ("scope", scope),
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);

    let get = |path: String| {
        let http = http.clone();
        let t = t.clone();
        async move {
            let sep = if path.contains('?') { '&' } else { '?' };
            http.get(format!("{path}{sep}api-version=7.1"))
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
        }
    };
    let org = emu.org_url(demo::ORG);
    let v: Value = get(format!("{org}/_apis/projects"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["count"], 2);
    let v: Value = get(format!("{org}/_apis/git/repositories"))
        .await
        .json()
        .await
        .unwrap();
    let repos: Vec<(String, bool, bool)> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r.get("defaultBranch").is_some(),
                r["isDisabled"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(repos.contains(&("empty-repo".into(), false, false)));
    assert!(repos.contains(&("legacy-archive".into(), true, true)));
    assert!(repos.contains(&("shop-pipelines".into(), true, false)));
    assert_eq!(repos.len(), 6);

    // Realistic spice registries.
    let shop = format!("{org}/Commerce/_apis/git/repositories/shop-pipelines");
    let toml = get(format!("{shop}/items?path=/spice.toml"))
        .await
        .text()
        .await
        .unwrap();
    assert!(toml.contains("decorator_registries"));
    let regs = get(format!("{shop}/items?path=/shop/registries.py"))
        .await
        .text()
        .await
        .unwrap();
    assert!(regs.contains("Registry(\"pipelines\")"));
    let orders = get(format!("{shop}/items?path=/shop/orders.py"))
        .await
        .text()
        .await
        .unwrap();
    assert!(orders.contains("depends_on=") && orders.contains("@pipelines.register"));
    let broken = get(format!("{shop}/items?path=/shop/refunds.py"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        broken.contains("def refunds(clean_orders:"),
        "a file with a syntax error"
    );
    let develop: Value = get(format!("{shop}/refs?filter=heads/develop"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(develop["count"], 1);
    let ml = format!("{org}/Commerce/_apis/git/repositories/ml-models");
    let reg = get(format!("{ml}/items?path=/src/models/registry.py"))
        .await
        .text()
        .await
        .unwrap();
    assert!(reg.contains("catalogue.create(\"models\", \"architectures\")"));

    // The other organizations diagnose onboarding problems.
    let status_of = |org: &str| {
        let url = format!("{}/_apis/projects", emu.org_url(org));
        async move {
            let r = get(url).await;
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, body) = status_of("tailspin").await;
    assert!(s == 401 && body.contains("TF401444"));
    let (s, body) = status_of("fabrikam").await;
    assert!(s == 401 && body.contains("TF400813"));
    let r = get(format!(
        "{}/Research/_apis/git/repositories/notebooks",
        emu.org_url("northwind")
    ))
    .await;
    assert_eq!(r.status(), 404);

    // Same commit ids on every start (fixed dates).
    let head = emu
        .branch_head(demo::ORG, "Commerce", "shop-pipelines", "main")
        .unwrap()
        .unwrap();
    emu.shutdown().await;
    let dir2 = tempfile::tempdir().unwrap();
    let emu2 = start(
        EmulatorConfig::demo(dir2.path().to_path_buf()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        emu2.branch_head(demo::ORG, "Commerce", "shop-pipelines", "main")
            .unwrap()
            .unwrap(),
        head
    );
    emu2.shutdown().await;

    // Restart on the same data dir keeps commits made through the API and their pushes.
    let emu3 = start(
        EmulatorConfig::demo(dir.path().to_path_buf()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let sha = emu3
        .commit(
            demo::ORG,
            "Commerce",
            "shop-pipelines",
            "main",
            vec![ado_emulator::FileChange::put("shop/new.py", "X = 1\n")],
            "after restart",
        )
        .unwrap();
    let pushes = emu3.pushes(demo::ORG, "Commerce", "shop-pipelines").len();
    emu3.shutdown().await;
    let emu4 = start(
        EmulatorConfig::demo(dir.path().to_path_buf()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        emu4.branch_head(demo::ORG, "Commerce", "shop-pipelines", "main")
            .unwrap()
            .unwrap(),
        sha
    );
    assert_eq!(
        emu4.pushes(demo::ORG, "Commerce", "shop-pipelines").len(),
        pushes
    );
    emu4.shutdown().await;
}
