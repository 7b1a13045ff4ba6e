//! Validated values that cross the service boundary. Each type's constructor is the only place
//! its rule lives: once a value exists, it is valid.

mod account;
mod app;
mod property;
mod site;

pub use account::*;
pub use app::*;
pub use property::*;
pub use site::*;
