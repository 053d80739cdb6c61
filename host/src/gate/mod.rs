//! The request gate, between the network and the component: who is asking
//! (Basic authentication against the users, their homes and permissions),
//! whether they may ask now (rate limits, the defender's bans), and handing
//! the request with the user's storage and locks to [`crate::runtime`].

pub mod access;
pub mod auth;
pub mod limits;
pub mod perms;
pub mod users;
