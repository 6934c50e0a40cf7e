//! `pinlat-agent`: pinlat's measuring instrument, as a guest's `/init` or natively.
//!
//! Exit codes: 0 the run completed, 2 bad usage or config, 3 the run failed.

mod busy_poll;
mod cli;
mod clock;
mod facts;
mod io_load;
mod loads;
mod modules;
mod native;
mod net_load;
mod opstats;
mod phases;
mod pid1;
mod recorder;
mod ring;
mod run;
mod sysctl;
mod thread;
mod timer;
mod tuning;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let pid1 = std::process::id() == 1;
    let args = match cli::Args::try_parse() {
        Ok(a) => a,
        // The kernel passes unknown command-line words to init: as PID 1, ignore them.
        Err(_) if pid1 => cli::Args::parse_from(["pinlat-agent"]),
        Err(e) => e.exit(),
    };
    if args.native {
        if let Err(e) = args.agent_config() {
            eprintln!("pinlat-agent: error: {e:#}");
            return ExitCode::from(2);
        }
        return match native::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pinlat-agent: error: {e:#}");
                ExitCode::from(3)
            }
        };
    }
    if pid1 || args.init {
        return pid1::run(&args);
    }
    eprintln!("pinlat-agent: choose --native (measure here) or --init (guest mode); see --help");
    ExitCode::from(2)
}
