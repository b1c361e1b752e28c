//! One module per command.

pub mod build;
pub mod builders;
pub mod completions;
pub mod man;
pub mod plan;
pub mod serve;
pub mod tag;
pub mod validate;
