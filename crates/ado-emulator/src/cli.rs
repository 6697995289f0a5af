//! `spicehub emulator`: runs the emulator until Ctrl-C and prints how to connect to it.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::{AccessLevel, EmulatorConfig, FileChange, SeedCommit, WebhookTarget};
use crate::{demo, start, testkit, EmulatorError};

/// Arguments of the `spicehub emulator` subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, env = "SPICEHUB_EMULATOR_BIND", default_value = "127.0.0.1:8089")]
    pub bind: SocketAddr,
    /// Directory of the emulated Git repositories (overrides the config file's `data_dir`).
    #[arg(long, env = "SPICEHUB_EMULATOR_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// JSON configuration file (tenants, apps, organizations, faults); the demo dataset when absent.
    #[arg(long, env = "SPICEHUB_EMULATOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Use the demo dataset (the default when no --config is given).
    #[arg(long)]
    pub demo: bool,
    /// Adds a repository made of one commit with the files of a local
    /// directory, as `ORG/PROJECT/NAME=DIR` (the project must exist). Try
    /// your own code in the emulator, or give browser tests known data.
    #[arg(long = "seed-repo", value_name = "ORG/PROJECT/NAME=DIR")]
    pub seed_repos: Vec<String>,
    /// Adds an organization of many projects, `NAME=PROJECTSxREPOS` (e.g.
    /// `contoso-wide=100x10`), in the demo tenant with the demo apps as
    /// members: the shape of a large customer, for the repository picker.
    /// The first repository of each project has one commit; the others are
    /// empty, since a commit costs several `git` processes at start.
    #[arg(long = "wide-org", value_name = "NAME=PROJECTSxREPOS")]
    pub wide_orgs: Vec<String>,
    /// Adds a fault rule active from the start, as the JSON of a `FaultRule`
    /// (what `POST /_emulator/faults` takes), e.g.
    /// `--fault '{"scope":"Token","fault":{"FicPropagation":{"secs":120}}}'`.
    /// Repeatable.
    #[arg(long = "fault", value_name = "JSON")]
    pub faults: Vec<String>,
    /// Turns on Azure DevOps' TSTU rate limiting per identity, as the JSON
    /// of a `RateLimitModel` (what `PUT /_emulator/rate-limit` takes;
    /// missing fields take their defaults), e.g.
    /// `--rate-limit '{"limit":200,"window_secs":300,"max_delay_ms":2000}'`.
    #[arg(long = "rate-limit", value_name = "JSON")]
    pub rate_limit: Option<String>,
    /// Where to post `git.push` service-hook deliveries (e.g. http://127.0.0.1:3000/gateway/public/sync).
    #[arg(long, env = "SPICEHUB_EMULATOR_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Basic Auth user name of the deliveries.
    #[arg(long, env = "SPICEHUB_EMULATOR_WEBHOOK_USER")]
    pub webhook_user: Option<String>,
    /// Basic Auth password of the deliveries.
    #[arg(long, env = "SPICEHUB_EMULATOR_WEBHOOK_PASSWORD")]
    pub webhook_password: Option<String>,
}

/// Runs the emulator until Ctrl-C.
pub async fn run_cli(args: EmulatorArgs) -> Result<(), EmulatorError> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("emulator-data"));
    let use_demo = args.demo || args.config.is_none();
    let mut config = match &args.config {
        Some(path) if !args.demo => {
            let mut loaded = EmulatorConfig::from_json_file(path)?;
            if let Some(dir) = &args.data_dir {
                loaded.data_dir = dir.clone();
            }
            loaded
        }
        _ => EmulatorConfig::demo(data_dir.clone()),
    };
    for spec in &args.seed_repos {
        config = seed_repo_from_dir(config, spec)?;
    }
    for spec in &args.wide_orgs {
        config = wide_org(config, spec)?;
    }
    for spec in &args.faults {
        let rule: crate::FaultRule = serde_json::from_str(spec).map_err(|error| {
            EmulatorError::Invalid(format!(
                "--fault `{spec}`: expected a FaultRule as JSON, e.g. {{\"scope\":\"Token\",\"fault\":{{\"FicPropagation\":{{\"secs\":120}}}}}}: {error}"
            ))
        })?;
        config.faults.push(rule);
    }
    if let Some(spec) = &args.rate_limit {
        config.rate_limit = Some(parse_rate_limit(spec)?);
    }
    if let Some(url) = &args.webhook_url {
        config.webhook = Some(WebhookTarget {
            url: url.clone(),
            username: args.webhook_user.clone(),
            password: args.webhook_password.clone(),
            http_headers: None,
        });
    }
    let emu = start(config.clone(), args.bind).await?;
    let mut out = String::new();
    out.push_str(&format!(
        "spicehub emulator (Entra ID + Azure DevOps) on {}\n",
        emu.base_url()
    ));
    out.push_str(&format!("  authority (Entra):  {}\n", emu.authority_url()));
    out.push_str(&format!("  Azure DevOps:       {}\n", emu.devops_url()));
    out.push_str(&format!(
        "  admin:              {}/_emulator/...\n",
        emu.base_url()
    ));
    out.push_str(&format!(
        "  data:               {}\n",
        config.data_dir.display()
    ));
    if use_demo {
        let cert = config.data_dir.join("demo-certificate.pem");
        let key = config.data_dir.join("demo-certificate.key");
        std::fs::write(&cert, testkit::REGISTERED_CERT_PEM)?;
        std::fs::write(&key, testkit::REGISTERED_KEY_PEM)?;
        out.push_str("\nDemo credentials (fake, for the emulator only):\n");
        out.push_str(&format!(
            "  tenant id:        {}  (or {})\n",
            demo::TENANT_ID,
            demo::TENANT_DOMAIN
        ));
        out.push_str(&format!("  client id:        {}\n", demo::CLIENT_ID));
        out.push_str(&format!("  client secret:    {}\n", demo::CLIENT_SECRET));
        out.push_str(&format!(
            "  expired secret:   {}  (AADSTS7000222)\n",
            demo::EXPIRED_SECRET
        ));
        out.push_str(&format!(
            "  certificate:      {}  (private key {})\n",
            cert.display(),
            key.display()
        ));
        out.push_str(&format!(
            "  token endpoint:   {}\n",
            emu.token_url(demo::TENANT_ID)
        ));
        out.push_str(&format!(
            "  multi-tenant hub app: client id {} secret {} (home tenant {})\n",
            demo::HUB_CLIENT_ID,
            demo::HUB_CLIENT_SECRET,
            demo::HUB_TENANT_ID
        ));
    }
    out.push_str("\nOrganizations:\n");
    for org in &config.organizations {
        let member = org
            .members
            .iter()
            .map(|(client_id, level)| format!("{client_id}={level:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "  {}  tenant {}  members [{}]\n",
            emu.org_url(&org.name),
            org.tenant,
            member
        ));
        for project in &org.projects {
            let repos: Vec<String> = project
                .repos
                .iter()
                .map(|repo| {
                    let mut label = repo.name.clone();
                    if repo.disabled {
                        label.push_str(" (disabled)");
                    } else if repo.seed.is_empty() && repo.import_from.is_none() {
                        label.push_str(" (empty)");
                    }
                    label
                })
                .collect();
            out.push_str(&format!("    {}: {}\n", project.name, repos.join(", ")));
        }
    }
    match &config.webhook {
        Some(webhook) => out.push_str(&format!("\nWebhook: git.push deliveries go to {}\n", webhook.url)),
        None => out.push_str("\nWebhook: none (POST a WebhookTarget to /_emulator/webhook, or create a subscription)\n"),
    }
    println!("{out}");
    tokio::signal::ctrl_c().await?;
    emu.shutdown().await;
    Ok(())
}

/// `--rate-limit JSON` → a checked model (the error names the flag, since the user typed it).
fn parse_rate_limit(spec: &str) -> Result<crate::RateLimitModel, EmulatorError> {
    let model: crate::RateLimitModel = serde_json::from_str(spec).map_err(|error| {
        EmulatorError::Invalid(format!(
            "--rate-limit `{spec}`: expected a RateLimitModel as JSON, e.g. {{\"limit\":200,\"window_secs\":300}}: {error}"
        ))
    })?;
    model
        .validate()
        .map_err(|error| EmulatorError::Invalid(format!("--rate-limit `{spec}`: {error}")))?;
    Ok(model)
}

/// `NAME=PROJECTSxREPOS` → an organization with that many projects of that
/// many repositories each.
fn wide_org(config: EmulatorConfig, spec: &str) -> Result<EmulatorConfig, EmulatorError> {
    let invalid = || {
        EmulatorError::Invalid(format!(
            "--wide-org `{spec}`: expected NAME=PROJECTSxREPOS, e.g. contoso-wide=100x10 (at most 1000 projects of 100 repositories)"
        ))
    };
    let (name, shape) = spec.split_once('=').ok_or_else(invalid)?;
    let (projects, repos) = shape.split_once('x').ok_or_else(invalid)?;
    let projects: usize = projects.parse().map_err(|_| invalid())?;
    let repos: usize = repos.parse().map_err(|_| invalid())?;
    if name.is_empty() || !(1..=1000).contains(&projects) || !(1..=100).contains(&repos) {
        return Err(invalid());
    }
    let mut config = config
        .with_org(
            name,
            &crate::config::derived_id("org", name),
            demo::TENANT_ID,
        )
        .with_member(name, demo::CLIENT_ID, AccessLevel::Basic)
        .with_member(name, demo::HUB_CLIENT_ID, AccessLevel::Basic);
    for p in 1..=projects {
        let project = format!("Project {p:03}");
        config = config.with_project(name, &project);
        for r in 1..=repos {
            let repo = format!("p{p:03}-repo-{r:02}");
            config = if r == 1 {
                config.with_seeded_repo(
                    name,
                    &project,
                    &repo,
                    vec![SeedCommit {
                        branch: None,
                        from_branch: None,
                        message: "Initial commit".into(),
                        author: None,
                        date: None,
                        changes: vec![FileChange::put("README.md", format!("# {repo}\n"))],
                        tags: Vec::new(),
                    }],
                )
            } else {
                config.with_repo(name, &project, &repo)
            };
        }
    }
    Ok(config)
}

/// `ORG/PROJECT/NAME=DIR` → the repository with one commit of DIR's files.
fn seed_repo_from_dir(config: EmulatorConfig, spec: &str) -> Result<EmulatorConfig, EmulatorError> {
    let invalid = || {
        EmulatorError::Invalid(format!(
            "--seed-repo `{spec}`: expected ORG/PROJECT/NAME=DIR"
        ))
    };
    let (target, dir) = spec.split_once('=').ok_or_else(invalid)?;
    let mut parts = target.splitn(3, '/');
    let (Some(org), Some(project), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let exists = config.organizations.iter().any(|org_config| {
        org_config.name.eq_ignore_ascii_case(org)
            && org_config
                .projects
                .iter()
                .any(|project_config| project_config.name.eq_ignore_ascii_case(project))
    });
    if !exists {
        return Err(EmulatorError::Invalid(format!(
            "--seed-repo `{spec}`: no project {org}/{project} in the configuration"
        )));
    }
    let root = PathBuf::from(dir);
    let mut changes = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(folder) = stack.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|error| {
            EmulatorError::Invalid(format!(
                "--seed-repo: cannot read {}: {error}",
                folder.display()
            ))
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if entry.file_name() != ".git" {
                    stack.push(path);
                }
            } else if kind.is_file() {
                let rel = path.strip_prefix(&root).unwrap_or(&path);
                let Some(rel) = rel.to_str() else { continue };
                let bytes = std::fs::read(&path).map_err(|error| {
                    EmulatorError::Invalid(format!(
                        "--seed-repo: cannot read {}: {error}",
                        path.display()
                    ))
                })?;
                changes.push(crate::FileChange::put(rel.replace('\\', "/"), bytes));
            }
        }
    }
    changes.sort_by(|left, right| format!("{left:?}").cmp(&format!("{right:?}")));
    Ok(config.with_seeded_repo(
        org,
        project,
        name,
        vec![crate::SeedCommit {
            branch: None,
            from_branch: None,
            message: format!("Import {dir}"),
            author: None,
            date: None,
            changes,
            tags: Vec::new(),
        }],
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_rate_limit;

    #[test]
    fn rate_limit_flag_takes_a_partial_model() {
        let model = parse_rate_limit(r#"{"limit":50,"window_secs":10}"#).expect("valid");
        assert_eq!((model.limit, model.window_secs), (50, 10));
        assert_eq!(model.max_delay_ms, 30_000, "missing fields default");
    }

    #[test]
    fn rate_limit_flag_names_itself_when_refused() {
        for spec in ["not json", r#"{"limit":0}"#, r#"{"block_factor":0.5}"#] {
            let message = parse_rate_limit(spec).expect_err("refused").to_string();
            assert!(message.contains("--rate-limit"), "{message}");
        }
    }
}
