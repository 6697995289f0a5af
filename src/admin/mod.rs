//! What an admin does, as plain async functions shared by the command line
//! and the admin pages' server functions, so neither duplicates logic:
//! adding repositories and asking for synchronizations (`repositories`).

pub mod repositories;
