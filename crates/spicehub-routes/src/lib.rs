//! Every path the hub answers that something outside the page code names:
//! Azure DevOps (the webhook), Entra ID (the consent callback), probes and
//! scrapers, and the pages the server redirects to. The router, the sign-in
//! gate, the CSRF exemption and the URLs the hub hands out all read them
//! here, so they cannot drift apart.

/// Where Azure DevOps posts `git.push` deliveries (Basic Auth, no cookies).
pub const WEBHOOK: &str = "/gateway/public/sync";
/// Everything under this prefix authenticates itself (Basic Auth), so the
/// sign-in gate and the CSRF check leave it alone.
pub const PUBLIC_GATEWAY_PREFIX: &str = "/gateway/public/";
/// Where Entra ID sends a tenant admin back after admin consent.
pub const CONSENT_CALLBACK: &str = "/admin-consent/callback";
/// The sign-in page.
pub const SIGN_IN: &str = "/signin";
/// Server functions (`/api/<name>`).
pub const API_PREFIX: &str = "/api/";
/// Sign-out is a plain form post to this server function.
pub const SIGN_OUT: &str = "/api/sign_out";
/// The sign-in server function (throttled per address in front of it).
pub const SIGN_IN_API: &str = "/api/sign_in";
/// Liveness and database probe.
pub const HEALTH: &str = "/healthz";
/// Prometheus metrics.
pub const METRICS: &str = "/metrics";
/// The hub as an OpenID Connect issuer (its issuer is the public URL):
/// Entra ID reads the discovery document, then the keys it names, to check
/// the assertions of federated credentials.
pub const OIDC_DISCOVERY: &str = "/.well-known/openid-configuration";
/// The issuer's public keys (JWKS), named by the discovery document.
pub const OIDC_JWKS: &str = "/.well-known/jwks.json";

/// Downloads of a registry from the viewer:
/// `/export/<repository>/<registry>/<svg|png|json>`, the view in the same
/// query parameters as the registry page. Signed-in users only (the
/// sign-in gate covers it: it is not a public prefix).
pub const EXPORT: &str = "/export";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_is_under_the_public_gateway() {
        assert!(WEBHOOK.starts_with(PUBLIC_GATEWAY_PREFIX));
        assert!(SIGN_OUT.starts_with(API_PREFIX));
        // OpenID Connect Discovery fixes where the document lives under the issuer.
        assert_eq!(OIDC_DISCOVERY, "/.well-known/openid-configuration");
    }
}
