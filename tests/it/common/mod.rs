//! Test harness: the real `spicehub` binary as a child process on a random
//! port, against a fresh database (a SQLite file, or a new PostgreSQL
//! database when `SPICEHUB_TEST_POSTGRES_URL` is set).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

pub use spicehub_core::testing::TestDb;

pub const BIN: &str = env!("CARGO_BIN_EXE_spicehub");

pub struct Hub {
    pub url: String,
    child: Child,
    logs: Arc<Mutex<String>>,
}

pub struct HubOptions<'a> {
    pub db: &'a TestDb,
    pub data_dir: &'a Path,
    pub env: Vec<(&'a str, String)>,
}

impl Hub {
    pub fn start(db: &TestDb, data_dir: &Path) -> Hub {
        Self::start_with(HubOptions {
            db,
            data_dir,
            env: vec![],
        })
    }

    pub fn start_with(options: HubOptions<'_>) -> Hub {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--bind")
            .arg("127.0.0.1:0")
            .env("DATABASE_URL", &options.db.url)
            .env("SPICEHUB_DATA_DIR", options.data_dir)
            .env_remove("SPICEHUB_PUBLIC_URL")
            .env_remove("SPICEHUB_SECRET_KEY")
            .env_remove("SPICEHUB_ADMIN_EMAIL")
            .env_remove("SPICEHUB_ADMIN_PASSWORD")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn spicehub");
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let logs = logs.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(i) = line.find("listening on http://") {
                        let url = line[i + "listening on ".len()..]
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        let _ = tx.send(url);
                    }
                    let mut l = logs.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("hub did not start; output:\n{}", logs.lock().unwrap());
            }
        };
        Hub { url, child, logs }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// SIGTERM, as an orchestrator stops it; returns the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("hub did not stop within 10 s of SIGTERM");
    }
}

impl Hub {
    /// SIGKILL: the process gets no chance to clean up (a crash).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `spicehub admin create`, the password on standard input.
pub fn create_user(
    db: &TestDb,
    data_dir: &Path,
    email: &str,
    role: &str,
    password: &str,
) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(["admin", "create", "--email", email, "--role", role])
        .env("DATABASE_URL", &db.url)
        .env("SPICEHUB_DATA_DIR", data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn admin create");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{password}").expect("write password");
    drop(stdin);
    child.wait_with_output().expect("admin create output")
}

/// A browser-like client: keeps cookies, does not follow redirects (tests
/// look at them), sends `Origin` on posts like a browser does.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub async fn sign_in(
    client: &reqwest::Client,
    hub: &Hub,
    email: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(format!("{}/api/sign_in", hub.url))
        .header("Origin", &hub.url)
        .header("Accept", "text/html")
        .form(&[
            ("email", email),
            ("password", password),
            ("next", "/registries"),
        ])
        .send()
        .await
        .expect("sign-in request")
}

pub fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_owned();
    (dir, path)
}

/// A parsed fixture from `crates/spicehub-parser/tests/fixtures`.
pub fn fixture_graph(name: &str) -> spicehub_parser::Graph {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/spicehub-parser/tests/fixtures")
        .join(name);
    spicehub_parser::parse_dir(&dir).expect("fixture parses")
}

/// A migrated handle on a test database.
pub async fn open_db(db: &TestDb) -> spicehub_core::db::Db {
    db.open().await
}

/// A registry `big.registry` labelled `label` with `n` entries in modules
/// of 50 (`big.m0`, `big.m1`, …); entry i depends on two earlier entries, so
/// the graph is a DAG with about 2n edges.
pub fn synthetic_registry(n: usize, label: &str) -> spicehub_parser::Graph {
    use spicehub_parser::{Edge, EdgeKind, Entry, EntryKind, Graph, Registry};
    let registry = Registry {
        id: "big.registry".into(),
        label: label.into(),
        file: "big/registry.py".into(),
        line: 1,
    };
    let entries = (0..n)
        .map(|i| Entry {
            registry: registry.id.clone(),
            name: format!("entry_{i}"),
            kind: EntryKind::Function,
            target: format!("big.m{}.entry_{i}", i / 50),
            file: format!("big/m{}.py", i / 50),
            line: u32::try_from(i).unwrap_or(0) + 1,
            doc: None,
        })
        .collect();
    let mut edges = Vec::new();
    for i in 1..n {
        for back in [1 + i % 7, 1 + (i * 31) % 97] {
            if back <= i {
                edges.push(Edge {
                    registry: registry.id.clone(),
                    from: format!("entry_{}", i - back),
                    to: format!("entry_{i}"),
                    kind: EdgeKind::Parameter,
                    dangling: false,
                });
            }
        }
    }
    Graph {
        registries: vec![registry],
        entries,
        edges,
        diagnostics: vec![],
    }
}
