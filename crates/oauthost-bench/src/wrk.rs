//! Driving `wrk`: one Lua script per load, and its summary read back.
//!
//! wrk keeps its connections open (HTTP/1.1 keep-alive) and measures each request from the
//! moment it is written. Loads that consume a one-shot credential (a code, a refresh token)
//! read one request body per line from a file: each wrk thread takes every `threads`-th line,
//! so no body is sent twice. A paced run adds wrk's `delay()` hook: each connection waits a
//! fixed interval (on average) after each answer, which holds the rate near a target.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::process::Command;

use crate::BenchError;

/// What one run sends.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The request path.
    pub path: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body of every request, or none.
    pub body: Option<String>,
    /// A file with one body per line, each sent once.
    pub bodies: Option<PathBuf>,
}

impl Load {
    /// A `GET` of `path`.
    pub(crate) fn get(path: &str) -> Self {
        Self {
            method: "GET",
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
            bodies: None,
        }
    }

    /// A form `POST` to `path` with `body`.
    pub(crate) fn post_form(path: &str, body: &str) -> Self {
        Self {
            method: "POST",
            path: path.to_owned(),
            headers: vec![(
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: Some(body.to_owned()),
            bodies: None,
        }
    }

    /// The same load with one more header.
    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same load, with a different body for each request, read from `file`.
    pub(crate) fn bodies_from(mut self, file: &Path) -> Self {
        self.body = None;
        self.bodies = Some(file.to_owned());
        self
    }
}

/// How hard one run pushes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// wrk threads.
    pub threads: u32,
    /// Open connections, shared by the threads.
    pub connections: u32,
    /// How long the run lasts.
    pub duration: Duration,
    /// For a paced run: the mean pause of each connection after each answer, in ms.
    pub pause_ms: Option<f64>,
}

/// What wrk measured.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Measurement {
    /// Requests completed.
    pub requests: u64,
    /// Requests per second.
    pub rps: f64,
    /// Median latency, in ms.
    pub p50_ms: f64,
    /// 99th percentile latency, in ms.
    pub p99_ms: f64,
    /// Answers with a status of 400 or more.
    pub status_errors: u64,
    /// Connect, read, write and timeout errors.
    pub socket_errors: u64,
}

/// Escapes `text` as a Lua string literal.
fn lua_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The Lua script of a run.
pub(crate) fn script(load: &Load, shape: &Shape) -> String {
    let mut lua = String::new();
    lua.push_str(&format!("wrk.method = {}\n", lua_string(load.method)));
    if let Some(body) = &load.body {
        lua.push_str(&format!("wrk.body = {}\n", lua_string(body)));
    }
    for (name, value) in &load.headers {
        lua.push_str(&format!(
            "wrk.headers[{}] = {}\n",
            lua_string(name),
            lua_string(value)
        ));
    }
    lua.push_str(
        "local counter = 0\n\
         function setup(thread)\n  thread:set(\"tid\", counter)\n  counter = counter + 1\nend\n",
    );
    if let Some(file) = &load.bodies {
        let file = file.display().to_string();
        lua.push_str(&format!(
            "local bodies = {{}}\nlocal next_body = 0\n\
             function init(args)\n\
             \x20 for line in io.lines({}) do bodies[#bodies + 1] = line end\n\
             \x20 next_body = tid\n\
             end\n\
             function request()\n\
             \x20 local body = bodies[(next_body % #bodies) + 1]\n\
             \x20 next_body = next_body + {}\n\
             \x20 return wrk.format(nil, nil, nil, body)\n\
             end\n",
            lua_string(&file),
            shape.threads
        ));
    }
    if let Some(pause) = shape.pause_ms {
        lua.push_str(&format!(
            "local pause = {pause:.4}\n\
             function delay()\n\
             \x20 local whole = math.floor(pause)\n\
             \x20 if math.random() < pause - whole then whole = whole + 1 end\n\
             \x20 return whole\n\
             end\n"
        ));
    }
    lua.push_str(
        "function done(summary, latency, requests)\n\
         \x20 local e = summary.errors\n\
         \x20 io.write(string.format(\"BENCH requests=%.0f duration_us=%.0f p50_us=%.0f \
         p99_us=%.0f status_errors=%.0f socket_errors=%.0f\\n\", summary.requests, \
         summary.duration, latency:percentile(50), latency:percentile(99), e.status, \
         e.connect + e.read + e.write + e.timeout))\n\
         end\n",
    );
    lua
}

/// Runs wrk against `address` and reads its summary. `dir` keeps the script.
pub(crate) async fn run(
    address: SocketAddr,
    load: &Load,
    shape: &Shape,
    dir: &Path,
) -> Result<Measurement, BenchError> {
    let script_path = dir.join(format!(
        "load-{}.lua",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::write(&script_path, script(load, shape))?;
    let output = Command::new("wrk")
        .arg(format!("--threads={}", shape.threads))
        .arg(format!("--connections={}", shape.connections))
        .arg(format!("--duration={}s", shape.duration.as_secs().max(1)))
        .arg("--timeout=10s")
        .arg("--script")
        .arg(&script_path)
        .arg(format!("http://{address}{}", load.path))
        .output()
        .await
        .map_err(|source| BenchError::Tool {
            tool: "wrk",
            message: format!("{source} (install it: apt-get install wrk)"),
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|line| line.starts_with("BENCH "))
        .ok_or_else(|| BenchError::Tool {
            tool: "wrk",
            message: format!(
                "no summary; stdout: {stdout} stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
        })?;
    parse(line)
}

/// Reads the `BENCH key=value...` line the script's `done` writes.
fn parse(line: &str) -> Result<Measurement, BenchError> {
    let mut values = std::collections::HashMap::new();
    for pair in line.split_whitespace().skip(1) {
        if let Some((key, value)) = pair.split_once('=') {
            let value: f64 = value.parse().map_err(|_| BenchError::Tool {
                tool: "wrk",
                message: format!("unreadable summary: {line}"),
            })?;
            values.insert(key, value);
        }
    }
    let get = |key: &str| values.get(key).copied().unwrap_or(0.0);
    let seconds = get("duration_us") / 1e6;
    // Counts are whole numbers printed by the script: the casts lose nothing.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let count = |key: &str| get(key) as u64;
    Ok(Measurement {
        requests: count("requests"),
        rps: if seconds > 0.0 {
            get("requests") / seconds
        } else {
            0.0
        },
        p50_ms: get("p50_us") / 1e3,
        p99_ms: get("p99_us") / 1e3,
        status_errors: count("status_errors"),
        socket_errors: count("socket_errors"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_summary() {
        let m = parse(
            "BENCH requests=1000 duration_us=2000000 p50_us=1500 p99_us=9000 \
             status_errors=3 socket_errors=0",
        )
        .unwrap();
        assert_eq!(m.requests, 1000);
        assert!((m.rps - 500.0).abs() < 1e-9);
        assert!((m.p50_ms - 1.5).abs() < 1e-9);
        assert!((m.p99_ms - 9.0).abs() < 1e-9);
        assert_eq!(m.status_errors, 3);
    }

    #[test]
    fn escapes_lua_strings() {
        assert_eq!(lua_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    }
}
