//! `spicehub issuer check`: reads the issuer's discovery document and keys
//! through its public URL, as Entra ID does, and checks what Entra checks.
//! Each finding says what is wrong and what to change.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// Entra ID keeps only this many keys of an issuer.
pub const ENTRA_MAX_KEYS: usize = 100;

/// Bodies larger than this are not read (Entra bounds them too).
const MAX_BODY: usize = 256 * 1024;

/// One finding.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Finding {
    /// Stable name of the check.
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// What the check saw.
#[derive(Clone, Debug, Serialize)]
pub struct IssuerReport {
    pub issuer: String,
    pub findings: Vec<Finding>,
    /// The kids the JWKS publishes.
    pub kids: Vec<String>,
}

impl IssuerReport {
    pub fn ok(&self) -> bool {
        self.findings.iter().all(|f| f.ok)
    }
}

/// Checks the issuer at `issuer`. `signing_kid` is the key the hub signs
/// with now (it must be published); `reachability` is the issuer's own
/// verdict on its URL (see `Issuer::reachability_problem`).
pub async fn check_issuer(
    issuer: &str,
    signing_kid: Option<&str>,
    reachability: Option<&str>,
) -> IssuerReport {
    let mut report = IssuerReport {
        issuer: issuer.to_string(),
        findings: Vec::new(),
        kids: Vec::new(),
    };
    let mut note = |check: &'static str, ok: bool, detail: String| {
        report.findings.push(Finding { check, ok, detail });
    };
    note(
        "reachable_from_internet",
        reachability.is_none(),
        reachability.map_or_else(
            || "the public URL is HTTPS on a public host name".to_string(),
            |why| {
                format!(
                    "{why}; use a client secret or certificate instead, or set SPICEHUB_PUBLIC_URL"
                )
            },
        ),
    );
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            note(
                "discovery",
                false,
                format!("cannot make an HTTP client: {e}"),
            );
            return report;
        }
    };
    let discovery_url = format!(
        "{}{}",
        issuer.trim_end_matches('/'),
        spicehub_routes::OIDC_DISCOVERY
    );
    let discovery = match fetch_json(&client, &discovery_url).await {
        Ok(value) => value,
        Err(why) => {
            note("discovery", false, format!("{discovery_url}: {why}"));
            return report;
        }
    };
    note("discovery", true, format!("{discovery_url} answers JSON"));
    let stated = discovery
        .get("issuer")
        .and_then(Value::as_str)
        .unwrap_or("");
    note(
        "issuer_matches",
        stated == issuer,
        if stated == issuer {
            "`issuer` is exactly the issuer URL".to_string()
        } else {
            format!("`issuer` is {stated:?}, not {issuer:?}: Entra compares them exactly")
        },
    );
    let algs_ok = discovery
        .get("id_token_signing_alg_values_supported")
        .and_then(Value::as_array)
        .is_some_and(|algs| algs.iter().any(|a| a == "RS256"));
    note(
        "rs256_supported",
        algs_ok,
        if algs_ok {
            "`id_token_signing_alg_values_supported` lists RS256".to_string()
        } else {
            "`id_token_signing_alg_values_supported` must list RS256, the only algorithm Entra accepts".to_string()
        },
    );
    let Some(jwks_uri) = discovery.get("jwks_uri").and_then(Value::as_str) else {
        note(
            "jwks",
            false,
            "the discovery document has no `jwks_uri`".into(),
        );
        return report;
    };
    let jwks = match fetch_json(&client, jwks_uri).await {
        Ok(value) => value,
        Err(why) => {
            note("jwks", false, format!("{jwks_uri}: {why}"));
            return report;
        }
    };
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let usable: Vec<&Value> = keys
        .iter()
        .take(ENTRA_MAX_KEYS)
        .filter(|k| {
            k.get("kty").and_then(Value::as_str) == Some("RSA")
                && k.get("n").and_then(Value::as_str).is_some()
                && k.get("e").and_then(Value::as_str).is_some()
        })
        .collect();
    report.kids = usable
        .iter()
        .filter_map(|k| k.get("kid").and_then(Value::as_str).map(str::to_string))
        .collect();
    let mut note = |check: &'static str, ok: bool, detail: String| {
        report.findings.push(Finding { check, ok, detail });
    };
    note(
        "jwks",
        !usable.is_empty() && keys.len() <= ENTRA_MAX_KEYS,
        format!(
            "{jwks_uri} publishes {} RSA key(s){}",
            usable.len(),
            if keys.len() > ENTRA_MAX_KEYS {
                format!(
                    "; Entra keeps only the first {ENTRA_MAX_KEYS} of {}",
                    keys.len()
                )
            } else {
                String::new()
            }
        ),
    );
    if let Some(kid) = signing_kid {
        let published = usable
            .iter()
            .any(|k| k.get("kid").and_then(Value::as_str) == Some(kid));
        note(
            "signing_key_published",
            published,
            if published {
                format!("the key the hub signs with ({kid}) is published")
            } else {
                format!("the key the hub signs with ({kid}) is not in the JWKS Entra reads: is the public URL served by this hub?")
            },
        );
    }
    report
}

async fn fetch_json(client: &reqwest::Client, url: &str) -> Result<Value, String> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("not reachable ({e})"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(format!("larger than {MAX_BODY} bytes"));
    }
    let mut body = Vec::new();
    let mut response = response;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("cut off ({e})"))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            return Err(format!("larger than {MAX_BODY} bytes"));
        }
    }
    serde_json::from_slice(&body).map_err(|e| format!("not JSON ({e})"))
}
