//! Server functions: the typed calls from the UI to the server. Their bodies
//! run only on the server (the `#[server]` macro leaves a fetch stub in the
//! wasm build) and check who is calling before doing anything.

pub mod admin;
#[cfg(feature = "ssr")]
pub mod format;
pub mod session;
pub mod viewer;

use leptos::prelude::ServerFnError;

/// The message a person should read from a failed server function.
pub fn user_message(error: &ServerFnError) -> String {
    match error {
        ServerFnError::ServerError(message) => message.clone(),
        other => {
            format!("The hub could not be reached ({other}). Check your connection and try again.")
        }
    }
}
