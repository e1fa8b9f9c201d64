//! Operating sessiond, tried as an operator would: the admin listener's
//! Prometheus metrics read after known calls ([`metrics`]), the log lines
//! of the real binary parsed as JSON ([`logs`]), and traces exported over
//! OTLP to a collector the test runs ([`traces`]).
//!
//! # Layout
//! - this file: fetching an admin endpoint over plain HTTP, and reading one
//!   sample out of the Prometheus text format;
//! - [`metrics`]: the gRPC and sessiond metrics, on SQLite and PostgreSQL;
//! - [`logs`]: `--log-format json`, one line per session, run and refusal,
//!   each naming its request;
//! - [`traces`]: `--otlp-endpoint`, a caller's `traceparent` continued into
//!   the server's span and handed to an exec module.

#[path = "../common/mod.rs"]
mod common;
mod logs;
mod metrics;
mod traces;

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` on the admin listener at `addr`: the status code and body.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("an HTTP response has a head and a body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("an HTTP status line");
    (status, body.to_owned())
}

/// The scraped metrics at `addr`.
async fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    Scrape(body)
}

/// One scrape's text.
#[derive(Debug)]
struct Scrape(String);

impl Scrape {
    /// The value of the sample `name` whose labels include `labels`; `None`
    /// when there is none.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0
            .lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (series_name, series_labels) = match series.split_once('{') {
                    Some((n, rest)) => (n, rest.trim_end_matches('}')),
                    None => (series, ""),
                };
                if series_name != name {
                    return None;
                }
                let matches = labels.iter().all(|(key, expected)| {
                    series_labels
                        .split(',')
                        .any(|pair| pair == format!("{key}=\"{expected}\""))
                });
                matches.then(|| value.parse().expect("a sample's value is a number"))
            })
    }

    /// [`Scrape::value`], which must exist.
    #[track_caller]
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?} in:\n{}", self.0))
    }
}
