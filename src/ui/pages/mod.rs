//! One module per page.

pub mod not_found;
pub mod providers;
pub mod registries;
pub mod repositories;
pub mod signin;
