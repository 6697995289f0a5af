//! Leptos components: the page layout, shared pieces and one module per page.

pub mod components;
pub mod graph;
pub mod layout;
pub mod pages;
pub mod session;
