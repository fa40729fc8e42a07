//! Where a `vespa-tls-webhook serve` child listens.
//!
//! The harnesses start the binary with `--addr 127.0.0.1:0` (and
//! `--metrics-addr 127.0.0.1:0`): the kernel picks a free port when the server
//! binds, and the addresses are read from the server's own
//! "vespa-tls-webhook serving" log line. Picking a port first (bind `:0`,
//! release it, pass the number) races with every socket opened in between —
//! a CI run failed so (`--metrics-addr 127.0.0.1:32941: Address already in
//! use`), just after a test that had opened thousands of client connections,
//! whose local ports come from the same range.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// The message of the line (`src/server.rs`, `log_serving`).
pub const SERVING: &str = "vespa-tls-webhook serving";

/// The addresses a server bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listening {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
}

/// `RUST_LOG` value `base` plus the serving line's target at info.
pub fn with_serving_line(base: &str) -> String {
    format!("{base},{}=info", vespa_tls_webhook::server::LISTEN_TARGET)
}

/// This process's `RUST_LOG` (default `info`, the binary's default) plus the
/// serving line.
pub fn inherited_with_serving_line() -> String {
    with_serving_line(&std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string()))
}

/// The addresses of a serving line, in the JSON format or the text one;
/// `None` for any other line.
pub fn parse_serving_line(line: &str) -> Option<Listening> {
    if !line.contains(SERVING) {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        if v["message"] != SERVING {
            return None;
        }
        let addr = v["addr"].as_str()?.parse().ok()?;
        let metrics_addr = match v.get("metrics_addr") {
            Some(m) => Some(m.as_str()?.parse().ok()?),
            None => None,
        };
        return Some(Listening { addr, metrics_addr });
    }
    // Text: `… vespa-tls-webhook serving addr=127.0.0.1:1 metrics_addr=127.0.0.1:2`.
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|t| t.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
    };
    Some(Listening {
        addr: field("addr")?,
        metrics_addr: field("metrics_addr"),
    })
}

/// Wait until `child` has logged where it listens to `log`. An error with the
/// log's last lines when it exits first or `timeout` passes; the child is then
/// killed (when still running) and reaped.
pub async fn wait_listening(
    child: &mut Child,
    log: &Path,
    timeout: Duration,
) -> Result<Listening, String> {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(l) = text.lines().find_map(parse_serving_line) {
            return Ok(l);
        }
        let tail = || {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        match child.try_wait() {
            Ok(Some(status)) => return Err(format!("exited at start ({status}):\n{}", tail())),
            Err(e) => return Err(format!("cannot wait for the child: {e}")),
            Ok(None) => {}
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "no \"{SERVING}\" line within {timeout:?}:\n{}",
                tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
