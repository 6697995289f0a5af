//! The session as every page sees it, provided once by the app shell.

use leptos::prelude::*;

use crate::api::session::{SignIn, UserInfo};

/// The session as every page sees it: who is signed in, and the sign-in
/// action (the user is fetched again after it). Signing out is a plain form
/// post followed by a full page load, so it needs no action here.
#[derive(Clone, Copy)]
pub struct SessionContext {
    pub user: Resource<Result<Option<UserInfo>, ServerFnError>>,
    pub sign_in: ServerAction<SignIn>,
}
