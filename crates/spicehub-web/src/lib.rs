//! What a person sees: the HTML shell and router (`app`), the components
//! and pages (`ui`), and the server functions they call (`api`). Compiled
//! twice: with `ssr` into the server (server functions run, on top of
//! `spicehub-core`) and with `hydrate` into the browser bundle (server
//! functions become fetch calls; nothing server-only is linked).

#![recursion_limit = "256"]

pub mod api;
pub mod app;
pub mod csp;
pub mod ui;
