//! Who may do what: password hashing, the sign-in policy with its failure
//! throttling, and the signed-in user carried by each request. (The CSRF
//! check is HTTP middleware: it lives in the binary's `server::csrf`.)

pub mod password;
pub mod signin;

use serde::{Deserialize, Serialize};

use crate::db::users::Role;

/// Session key under which the signed-in user's id is kept.
pub const SESSION_USER_ID: &str = "user_id";

/// The signed-in user, placed in request extensions by the session
/// middleware so pages and server functions read it without a query.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuthUser {
    pub id: String,
    pub email: String,
    pub role: Role,
}

/// The client's address as the hub believes it: the peer, or the address
/// a trusted proxy forwarded (`config::Network::client_address`). The
/// server puts it in every request's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::IpAddr);

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}
