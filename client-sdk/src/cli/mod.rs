//! The `plasma` binary's pieces besides its flags: output for people and scripts, answers from
//! the store alone, and `plasma status`.

pub(crate) mod output;
pub(crate) mod sdk_extra;
pub(crate) mod status;
pub(crate) mod views;
