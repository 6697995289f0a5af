//! One module per page.

pub mod diff;
pub mod not_found;
pub mod picker;
pub mod provider_delete;
pub mod providers;
pub mod registries;
pub mod registry;
pub mod repositories;
pub mod repository;
pub mod signin;
pub mod timeline;
pub mod webhooks;
