//! One module per command.

pub mod build;
pub mod builders;
pub mod plan;
pub mod serve;
pub mod tag;
pub mod validate;
