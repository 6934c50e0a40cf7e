//! `pinlat`: parse arguments, run, print the error chain, exit with a documented code.

use std::process::ExitCode;

use clap::Parser;
use pinlat_runner::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // clap uses 0 for --help/--version and 2 for usage errors, as documented.
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    match cli::run(cli) {
        Ok(exit) => exit.into(),
        Err(f) => {
            eprintln!("pinlat: error: {:#}", f.error);
            f.exit.into()
        }
    }
}
