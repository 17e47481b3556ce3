// ANCHOR: all
//! What `--memory`, `--pids` and `--cpus` mean (book: chapter 5): the parsers
//! that clap calls while it reads the command line, so that a limit that makes
//! no sense is a usage error, status 2, before anything starts.

/// The limits asked for on the command line; `None` means "no limit".
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub memory: Option<u64>,
    pub pids: Option<u64>,
    pub cpus: Option<f64>,
}

/// A memory size: bytes, or a number with k, m or g (1024-based).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (number, unit) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        _ => (lower.as_str(), 1),
    };
    match number.parse::<u64>().ok().and_then(|n| n.checked_mul(unit)) {
        Some(bytes) if bytes > 0 => Ok(bytes),
        _ => Err(format!(
            "invalid size {text:?}: expected bytes or a number with k, m or g, like 100m"
        )),
    }
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
