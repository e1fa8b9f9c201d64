//! Development support shared by sessiond's tests (`tests/`) and its
//! benchmark (`bench/`); not part of sessiond.

pub mod postgres;
mod programs;
