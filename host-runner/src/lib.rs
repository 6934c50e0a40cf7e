//! The host runner's library: everything `pinlat` does beyond the pure model.

pub mod cli;
