//! CPU time of the whole bench process, for "cores busy" figures (the load bench here, and the
//! watcher's catch-up bench, which includes this file by path).

use std::time::Duration;

/// CPU time of this whole process so far (every thread, those that have ended included), user
/// and system, from `/proc/self/stat` (clock ticks: 10 ms at the usual 100 Hz).
pub(crate) fn process_cpu() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| {
        // Fields after the command's closing parenthesis; utime and stime are the 14th and 15th.
        let rest = s.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    });
    Duration::from_millis(ticks.unwrap_or(0) * 10)
}
