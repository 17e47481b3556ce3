// ANCHOR: all
//! What `--memory`, `--pids` and `--cpus` mean (book: chapter 5): the parsers
//! that clap calls while it reads the command line, so that a limit that makes
//! no sense is a usage error, status 2, before anything starts. `--memory` takes
//! a size as `--tmpfs-size` does: `filesystems::parse_size` reads both.

/// The limits asked for on the command line; `None` means "no limit".
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub memory: Option<u64>,
    pub pids: Option<u64>,
    pub cpus: Option<f64>,
}

/// A number of CPUs: 0.5 means half of one CPU's time.
pub fn parse_cpus(text: &str) -> Result<f64, String> {
    // The kernel refuses a quota below 1 ms per 100 ms period, i.e. 0.01 CPUs.
    match text.trim().parse::<f64>() {
        Ok(cpus) if cpus.is_finite() && cpus >= 0.01 => Ok(cpus),
        _ => Err(format!("invalid number of CPUs {text:?}: expected at least 0.01, like 0.5 or 2")),
    }
}

/// A maximum number of processes.
pub fn parse_pids(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(pids) if pids > 0 => Ok(pids),
        _ => Err(format!("invalid number of processes {text:?}: expected at least 1, like 20")),
    }
}
// ANCHOR_END: all
