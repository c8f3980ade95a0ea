//! The servers measured: the release `polls` binary as a child process, and the reference
//! axum handler returning a constant string, in this process.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::BenchError;

/// A running `polls --debug serve`.
#[derive(Debug)]
pub(crate) struct PollsServer {
    child: Child,
    pid: u32,
    /// Where it listens.
    pub address: SocketAddr,
}

impl PollsServer {
    /// Starts `polls` on a free loopback port over `database_url`, with `extra` arguments
    /// to `serve`, and waits until it listens. Its log goes to `log`.
    pub(crate) async fn start(
        polls: &Path,
        database_url: &str,
        extra: &[String],
        log: &Path,
    ) -> Result<Self, BenchError> {
        let log_file = std::fs::File::create(log)?;
        let mut child = Command::new(polls)
            .args(["--database-url", database_url, "--debug", "serve"])
            .args(["--bind", "127.0.0.1:0"])
            .args(extra)
            // Warnings only, unless the caller asks for more (`OAUTHOST_LOG=oauthost=debug`).
            .env(
                "OAUTHOST_LOG",
                std::env::var("OAUTHOST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| BenchError::Tool {
                tool: "polls",
                message: format!("{}: {source}", polls.display()),
            })?;
        let pid = child.id().ok_or_else(|| BenchError::Tool {
            tool: "polls",
            message: "exited at once".into(),
        })?;
        let stdout = child.stdout.take().ok_or_else(|| BenchError::Tool {
            tool: "polls",
            message: "no standard output".into(),
        })?;
        let mut lines = BufReader::new(stdout).lines();
        let wait = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let address = rest.split_whitespace().next().unwrap_or_default();
                    return address.parse::<SocketAddr>().map_err(|_| BenchError::Tool {
                        tool: "polls",
                        message: format!("unreadable address in {line:?}"),
                    });
                }
            }
            Err(BenchError::Tool {
                tool: "polls",
                message: format!("stopped before listening; see {}", log.display()),
            })
        };
        let address = tokio::time::timeout(std::time::Duration::from_secs(30), wait)
            .await
            .map_err(|_| BenchError::Tool {
                tool: "polls",
                message: "not listening after 30 s".into(),
            })??;
        Ok(Self {
            child,
            pid,
            address,
        })
    }

    /// Forgets the peak memory so far, so that the next [`peak_rss_mb`](Self::peak_rss_mb)
    /// tells the peak of what follows (Linux: `clear_refs` value 5). `false` when the
    /// kernel refused, and the peak stays that of the whole run.
    pub(crate) fn reset_peak(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5").is_ok()
    }

    /// The peak resident memory (`VmHWM`), in MB.
    pub(crate) fn peak_rss_mb(&self) -> f64 {
        proc_status_kb(self.pid, "VmHWM:").map_or(f64::NAN, |kb| kb as f64 / 1024.0)
    }

    /// CPU time used so far by the server and by this machine's PostgreSQL processes.
    pub(crate) fn cpu(&self) -> CpuTime {
        CpuTime {
            server_ticks: cpu_ticks(self.pid).unwrap_or(0),
            postgres_ticks: postgres_ticks(),
        }
    }

    /// Stops the server.
    pub(crate) async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// CPU time (user and system) used so far, in clock ticks (Linux's `USER_HZ`, 100 a second).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuTime {
    server_ticks: u64,
    postgres_ticks: u64,
}

impl CpuTime {
    /// The CPU time used since `before`, in microseconds per request for `requests`: the
    /// server's, then PostgreSQL's (0 when the database is not PostgreSQL on this machine).
    pub(crate) fn per_request_us(&self, before: &CpuTime, requests: u64) -> (f64, f64) {
        let per_request = |ticks: u64| ticks as f64 * 10_000.0 / requests.max(1) as f64;
        (
            per_request(self.server_ticks.saturating_sub(before.server_ticks)),
            per_request(self.postgres_ticks.saturating_sub(before.postgres_ticks)),
        )
    }
}

/// The user and system CPU time of process `pid`.
fn cpu_ticks(pid: u32) -> Option<u64> {
    stat_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Fields 14 and 15 (user and system time) of a `/proc/PID/stat` line, added.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name, field 2, is in parentheses and may hold spaces and parentheses
    // itself: count from the last `)`.
    let after_name: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| after_name.get(n - 3)?.parse::<u64>().ok();
    Some(field(14)? + field(15)?)
}

/// The CPU time of every process named `postgres` (the server and its backends), as
/// [`cpu_ticks`]. A backend that ended meanwhile takes its time with it.
fn postgres_ticks() -> u64 {
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return 0;
    };
    processes
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|name| name.trim_end() == "postgres")
        })
        .filter_map(cpu_ticks)
        .sum()
}

/// A field of `/proc/PID/status`, in kB.
fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|line| line.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Starts the reference: an axum handler answering `GET /` with a constant string, on the
/// same runtime shape as `serve` (tokio's multi-threaded runtime, one worker per core).
pub(crate) async fn start_reference() -> Result<SocketAddr, BenchError> {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(address)
}

/// The release `polls` binary: `path` if given, else `target/release/polls` under the
/// workspace.
pub(crate) fn polls_binary(path: Option<PathBuf>) -> Result<PathBuf, BenchError> {
    let path = path.unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/release/polls")
            .components()
            .collect()
    });
    if path.is_file() {
        Ok(path)
    } else {
        Err(BenchError::Tool {
            tool: "polls",
            message: format!(
                "{} not found: build it first with `cargo build --release -p polls`",
                path.display()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (tokio (rt) w) S 1 4242 4242 0 -1 4194560 913 0 0 0 \
                    1500 250 0 0 20 0 3 0 8115 226000000 9000";
        assert_eq!(stat_cpu_ticks(stat), Some(1750));
        assert_eq!(stat_cpu_ticks("4242 (truncated) S 1"), None);
    }

    #[test]
    fn cpu_time_is_told_per_request() {
        let before = CpuTime {
            server_ticks: 100,
            postgres_ticks: 50,
        };
        let after = CpuTime {
            server_ticks: 300,
            postgres_ticks: 150,
        };
        // 200 and 100 ticks of 10 ms over 1,000 requests: 2,000 and 1,000 µs each.
        assert_eq!(after.per_request_us(&before, 1000), (2000.0, 1000.0));
    }
}
