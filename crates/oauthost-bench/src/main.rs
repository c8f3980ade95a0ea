//! `oauthost-bench`: the benchmark of issue 6.
//!
//! Starts the release `polls` binary (build it first: `cargo build --release -p polls`),
//! sets a throw-away database up with the `polls` commands, and drives each operation with
//! `wrk` (Debian's `wrk` package) over keep-alive connections on loopback. In the same run it
//! measures a reference axum handler returning a constant string, with the same wrk
//! settings, and prints for each operation: requests per second, p50 and p99 latency, the
//! server's peak memory, the ratio to the reference, and p99 at half that peak rate.
//!
//! ```text
//! cargo build --release -p polls
//! cargo run --release -p oauthost-bench -- --backend both --duration 8
//! ```
//!
//! Every figure comes from the load generator; nothing is estimated. See BENCHMARKS.md.

mod prepare;
mod servers;
mod wrk;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use prepare::{Database, Fixture, Kind, CLIENT_ID, CLIENT_SECRET, PASSWORD};
use servers::PollsServer;
use wrk::{Load, Measurement, Shape};

/// What can stop the benchmark.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BenchError {
    /// A file or process failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The database failed.
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// oauthost's store failed.
    #[error("store: {0}")]
    Store(#[from] oauthost::store::StoreError),
    /// A tool (wrk, polls) failed.
    #[error("{tool}: {message}")]
    Tool {
        /// Which tool.
        tool: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The database was not as expected.
    #[error("setup: {0}")]
    Setup(String),
}

/// Which backends to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Backends {
    Sqlite,
    Postgres,
    Both,
}

/// The benchmark's options.
#[derive(Debug, Parser)]
#[command(
    name = "oauthost-bench",
    about = "Benchmarks the polls server with wrk"
)]
struct Options {
    /// Which database(s) to run on.
    #[arg(long, value_enum, default_value = "both")]
    backend: Backends,
    /// Seconds of each measurement.
    #[arg(long, default_value_t = 8)]
    duration: u64,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// wrk connections (kept alive).
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// The `polls` binary (default: target/release/polls of this workspace).
    #[arg(long)]
    polls: Option<PathBuf>,
    /// The PostgreSQL database in which a throw-away schema is made.
    #[arg(
        long,
        env = "OAUTHOST_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// Tokens stored for the large-table run of the token check.
    #[arg(long, default_value_t = 1_000_000)]
    large_tokens: i64,
    /// An extra argument for `polls serve` (repeat for several).
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    serve_args: Vec<String>,
    /// Only these operations (default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Keep the server's log in this folder, as `<backend>-server.log` (default: thrown
    /// away with the run's temporary folder). Set `OAUTHOST_LOG` for more than warnings.
    #[arg(long)]
    log_dir: Option<PathBuf>,
}

/// One line of the report.
#[derive(Debug, Clone)]
struct Row {
    backend: String,
    operation: String,
    tokens: i64,
    peak: Measurement,
    half: Option<Measurement>,
    rss_mb: f64,
    ratio: f64,
}

/// The operations measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    View,
    ClientCredentials,
    Refresh,
    Code,
    Introspection,
    Password,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Self::View => "protected view",
            Self::ClientCredentials => "client_credentials",
            Self::Refresh => "refresh_token",
            Self::Code => "authorization_code",
            Self::Introspection => "introspection",
            Self::Password => "password",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::ClientCredentials => "client_credentials",
            Self::Refresh => "refresh",
            Self::Code => "code",
            Self::Introspection => "introspection",
            Self::Password => "password",
        }
    }
}

/// `Authorization: Basic` for the benchmark client.
fn basic() -> String {
    let raw = format!("{CLIENT_ID}:{CLIENT_SECRET}");
    format!("Basic {}", base64(raw.as_bytes()))
}

/// Standard base64 with padding (written out to need no crate for one header).
fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Everything one backend's run needs.
struct Bench<'a> {
    options: &'a Options,
    dir: PathBuf,
    db: Database,
    fixture: Fixture,
    server: PollsServer,
    view_token: String,
    introspected_token: String,
    reference: Measurement,
    rows: Vec<Row>,
}

impl Bench<'_> {
    fn shape(&self, pause_ms: Option<f64>) -> Shape {
        Shape {
            threads: self.options.threads,
            connections: self.options.connections,
            duration: Duration::from_secs(self.options.duration),
            pause_ms,
        }
    }

    fn wanted(&self, operation: Operation) -> bool {
        self.options.only.is_empty() || self.options.only.iter().any(|o| o == operation.key())
    }

    /// The load of `operation`; consumable credentials are prepared for `count` requests.
    async fn load(&self, operation: Operation, count: usize) -> Result<Load, BenchError> {
        let basic = basic();
        Ok(match operation {
            Operation::View => {
                Load::get("/polls/").header("Authorization", &format!("Bearer {}", self.view_token))
            }
            Operation::ClientCredentials => Load::post_form(
                "/token/",
                "grant_type=client_credentials&scope=polls%3Aindex",
            )
            .header("Authorization", &basic),
            Operation::Introspection => Load::post_form(
                "/introspect/",
                &format!("token={}", self.introspected_token),
            )
            .header("Authorization", &basic),
            Operation::Password => Load::post_form(
                "/token/",
                &format!(
                    "grant_type=password&username=alice&password={}&scope=polls%3Aindex",
                    PASSWORD.replace(' ', "+")
                ),
            )
            .header("Authorization", &basic),
            Operation::Refresh => {
                let file = self.dir.join(format!("refresh-{count}-{}.txt", fresh()));
                self.fixture.refresh_bodies(&self.db, count, &file).await?;
                self.db.settle().await?;
                Load::post_form("/token/", "")
                    .header("Authorization", &basic)
                    .bodies_from(&file)
            }
            Operation::Code => {
                let file = self.dir.join(format!("codes-{count}-{}.txt", fresh()));
                self.fixture.code_bodies(&self.db, count, &file).await?;
                self.db.settle().await?;
                Load::post_form("/token/", "")
                    .header("Authorization", &basic)
                    .bodies_from(&file)
            }
        })
    }

    async fn run(&self, load: &Load, shape: &Shape) -> Result<Measurement, BenchError> {
        let measured = wrk::run(self.server.address, load, shape, &self.dir).await?;
        if measured.status_errors > 0 || measured.socket_errors > 0 {
            eprintln!(
                "  warning: {} error answers and {} socket errors out of {} requests",
                measured.status_errors, measured.socket_errors, measured.requests
            );
        }
        Ok(measured)
    }

    /// Peak throughput, then p99 at half that rate.
    async fn measure(&mut self, operation: Operation, label: &str) -> Result<(), BenchError> {
        if !self.wanted(operation) {
            return Ok(());
        }
        let tokens = self.db.count_tokens().await?;
        let consumable = matches!(operation, Operation::Refresh | Operation::Code);
        let budget = |rate: f64, seconds: u64| {
            // Enough one-shot credentials for the run, with a margin.
            ((rate * seconds as f64 * 1.3) as usize).max(1000)
        };
        let guess = budget(12_000.0, self.options.duration);
        let load = self
            .load(operation, if consumable { guess } else { 0 })
            .await?;
        self.server.reset_peak();
        let cpu_before = self.server.cpu();
        let peak = self.run(&load, &self.shape(None)).await?;
        let rss_mb = self.server.peak_rss_mb();
        let (server_us, postgres_us) = self.server.cpu().per_request_us(&cpu_before, peak.requests);
        match self.db.kind() {
            Kind::Sqlite => eprintln!(
                "[SQLite] {label}: CPU per request at the peak: server, SQLite in it, \
                 {server_us:.0} µs"
            ),
            Kind::Postgres => eprintln!(
                "[PostgreSQL] {label}: CPU per request at the peak: server {server_us:.0} µs, \
                 this machine's PostgreSQL processes {postgres_us:.0} µs"
            ),
        }
        // Half the peak rate: each connection pauses so that all together send about
        // rps / 2; one short calibrating run measures the time an answer itself takes.
        let target = peak.rps / 2.0;
        let connections = f64::from(self.options.connections);
        let cycle_ms = 1000.0 * connections / target;
        let seconds = (self.options.duration / 3).max(2);
        let calibrate_load = if consumable {
            self.load(operation, budget(target, seconds)).await?
        } else {
            load.clone()
        };
        let mut shape = self.shape(Some(cycle_ms));
        shape.duration = Duration::from_secs(seconds);
        let trial = self.run(&calibrate_load, &shape).await?;
        let answer_ms = (1000.0 * connections / trial.rps.max(1.0) - cycle_ms).max(0.0);
        let half_load = if consumable {
            self.load(operation, budget(target, self.options.duration))
                .await?
        } else {
            load
        };
        let half = self
            .run(
                &half_load,
                &self.shape(Some((cycle_ms - answer_ms).max(0.0))),
            )
            .await?;
        let row = Row {
            backend: self.db.kind().to_string(),
            operation: label.to_owned(),
            tokens,
            peak,
            half: Some(half),
            rss_mb,
            ratio: peak.rps / self.reference.rps,
        };
        print_row(&row);
        self.rows.push(row);
        Ok(())
    }

    /// The password grant saturating the server while `other` runs: `other`'s throughput
    /// under that load against alone.
    async fn saturation(&mut self, other: Operation) -> Result<(), BenchError> {
        if !self.wanted(Operation::Password) || !self.wanted(other) {
            return Ok(());
        }
        let shape = self.shape(None);
        let password = self.load(Operation::Password, 0).await?;
        let load = self.load(other, 0).await?;
        let alone = self.run(&load, &shape).await?;
        let (with_password, password_measured) =
            tokio::join!(self.run(&load, &shape), self.run(&password, &shape));
        let (with_password, password_measured) = (with_password?, password_measured?);
        println!(
            "  saturation [{}]: {} alone {:.0} rps; with the password grant saturating \
             ({:.0} rps of password) {:.0} rps = {:.2} of alone, p99 {:.2} ms",
            self.db.kind(),
            other.name(),
            alone.rps,
            password_measured.rps,
            with_password.rps,
            with_password.rps / alone.rps,
            with_password.p99_ms
        );
        self.rows.push(Row {
            backend: self.db.kind().to_string(),
            operation: format!("{} during password load", other.name()),
            tokens: self.db.count_tokens().await?,
            peak: with_password,
            half: None,
            rss_mb: self.server.peak_rss_mb(),
            ratio: with_password.rps / alone.rps,
        });
        Ok(())
    }
}

/// A distinct suffix for file names.
fn fresh() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn print_header() {
    println!(
        "| backend | operation | tokens stored | rps | p50 ms | p99 ms | peak RSS MB | ratio | \
         half-rate rps | half-rate p99 ms |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
}

fn print_row(row: &Row) {
    let (half_rps, half_p99) = row.half.map_or(("-".to_owned(), "-".to_owned()), |h| {
        (format!("{:.0}", h.rps), format!("{:.2}", h.p99_ms))
    });
    let rss = if row.rss_mb.is_nan() {
        "-".to_owned()
    } else {
        format!("{:.1}", row.rss_mb)
    };
    println!(
        "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {} | {:.2} | {} | {} |",
        row.backend,
        row.operation,
        row.tokens,
        row.peak.rps,
        row.peak.p50_ms,
        row.peak.p99_ms,
        rss,
        row.ratio,
        half_rps,
        half_p99
    );
}

async fn run_backend(
    options: &Options,
    polls: &std::path::Path,
    kind: Kind,
    reference_address: SocketAddr,
) -> Result<Vec<Row>, BenchError> {
    let dir = tempfile::tempdir()?;
    eprintln!("[{kind}] preparing the database");
    let db = Database::create(kind, dir.path(), &options.postgres_url).await?;
    let leftovers = db.leftovers();
    let result = async {
        let fixture = prepare::set_up(polls, &db).await?;
        let tokens = fixture.access_tokens(&db, 2).await?;
        fixture.fill_tokens(&db, 1000).await?;
        let log = match &options.log_dir {
            Some(kept) => {
                std::fs::create_dir_all(kept)?;
                kept.join(format!("{}-server.log", kind.to_string().to_lowercase()))
            }
            None => dir.path().join("server.log"),
        };
        let server = PollsServer::start(polls, &db.url, &options.serve_args, &log).await?;
        let mut shape = Shape {
            threads: options.threads,
            connections: options.connections,
            duration: Duration::from_secs(options.duration),
            pause_ms: None,
        };
        eprintln!("[{kind}] reference handler");
        let reference = wrk::run(reference_address, &Load::get("/"), &shape, dir.path()).await?;
        let reference_row = Row {
            backend: kind.to_string(),
            operation: "reference (constant string)".into(),
            tokens: 0,
            peak: reference,
            half: None,
            rss_mb: f64::NAN,
            ratio: 1.0,
        };
        print_row(&reference_row);
        let mut bench = Bench {
            options,
            dir: dir.path().to_owned(),
            db,
            fixture,
            server,
            view_token: tokens[0].clone(),
            introspected_token: tokens[1].clone(),
            reference,
            rows: vec![reference_row],
        };
        // Warm up: connections, prepared statements, caches.
        shape.duration = Duration::from_secs(2);
        let warm = bench.load(Operation::View, 0).await?;
        bench.run(&warm, &shape).await?;
        bench.measure(Operation::View, "protected view").await?;
        bench
            .measure(Operation::Introspection, "introspection")
            .await?;
        bench
            .measure(Operation::ClientCredentials, "client_credentials")
            .await?;
        bench.measure(Operation::Refresh, "refresh_token").await?;
        bench.measure(Operation::Code, "authorization_code").await?;
        bench.measure(Operation::Password, "password").await?;
        bench.saturation(Operation::View).await?;
        bench.saturation(Operation::ClientCredentials).await?;
        if bench.wanted(Operation::View) || bench.wanted(Operation::Introspection) {
            eprintln!("[{kind}] filling to {} tokens", options.large_tokens);
            bench
                .fixture
                .fill_tokens(&bench.db, options.large_tokens)
                .await?;
            bench.run(&warm, &shape).await?;
            bench.measure(Operation::View, "protected view").await?;
            bench
                .measure(Operation::Introspection, "introspection")
                .await?;
        }
        let Bench {
            server, rows, db, ..
        } = bench;
        server.stop().await;
        Ok::<_, BenchError>((rows, db))
    }
    .await;
    match result {
        Ok((rows, db)) => {
            db.drop().await?;
            Ok(rows)
        }
        Err(error) => {
            // The run's error is the one to report; the schema goes if it can.
            let _ = leftovers.clean().await;
            Err(error)
        }
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    format!("{cores} cores, {cpu}, Linux {kernel}")
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let options = Options::parse();
    match run(&options).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(options: &Options) -> Result<(), BenchError> {
    let polls = servers::polls_binary(options.polls.clone())?;
    let reference = servers::start_reference().await?;
    println!("machine: {}", machine());
    println!(
        "wrk: {} threads, {} keep-alive connections, {} s per measurement; serve args: {:?}",
        options.threads, options.connections, options.duration, options.serve_args
    );
    let kinds: &[Kind] = match options.backend {
        Backends::Sqlite => &[Kind::Sqlite],
        Backends::Postgres => &[Kind::Postgres],
        Backends::Both => &[Kind::Sqlite, Kind::Postgres],
    };
    let mut rows = Vec::new();
    for &kind in kinds {
        print_header();
        rows.extend(run_backend(options, &polls, kind, reference).await?);
    }
    println!("\nAll results:");
    print_header();
    for row in &rows {
        print_row(row);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_base64() {
        assert_eq!(base64(b"bench:s"), "YmVuY2g6cw==");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b"ab"), "YWI=");
    }
}
