//! The Content Security Policy of the hub's responses. The page shell adds
//! the per-response nonce of the hydration script; everything else the
//! server sends carries the policy without one.

/// The policy for every response; pages rendered by Leptos send their own
/// with the per-response nonce of the hydration script added.
pub fn content_security_policy(nonce: Option<&str>) -> String {
    let script = match nonce {
        Some(n) => format!("script-src 'self' 'nonce-{n}' 'wasm-unsafe-eval'"),
        None => "script-src 'self' 'wasm-unsafe-eval'".to_owned(),
    };
    format!(
        "default-src 'self'; {script}; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
         form-action 'self'"
    )
}
