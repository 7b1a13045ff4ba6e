//! `healthcheck`: a probe of a running server's `/healthz` that needs no curl in the container.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::client::conn::http1::handshake;
use hyper::header::HOST;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use url::Url;

use super::reachable;
use crate::config::Config;

/// GET {url}/healthz over plain HTTP/1.1, so that a container needs no curl. Without a URL,
/// the server's address file says where it listens, else --listen.
pub(super) async fn healthcheck(config: &Config, url: Option<&str>) -> ExitCode {
    let written = config
        .address_file
        .as_deref()
        .and_then(|path| std::fs::read_to_string(path).ok());
    let listen = written.as_deref().map_or(config.listen.as_str(), str::trim);
    let base = url.map_or_else(|| format!("http://{}", reachable(listen)), str::to_owned);
    // Checked before any message quotes it: a URL with a password in it is refused unquoted.
    let target = match HealthTarget::of(&base) {
        Ok(target) => target,
        Err(error) => {
            eprintln!("jira-userprops: the healthcheck URL is not usable: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let probe = async {
        let stream = TcpStream::connect(&target.address).await?;
        let (mut sender, connection) = handshake(TokioIo::new(stream)).await?;
        // Errors of the connection also fail `send_request`, which reports them.
        tokio::spawn(connection);
        let request = Request::get(&target.path)
            .header(HOST, &target.host)
            .body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await?;
        anyhow::Ok(response.status())
    };
    match tokio::time::timeout(Duration::from_secs(5), probe).await {
        Ok(Ok(StatusCode::OK)) => ExitCode::SUCCESS,
        Ok(Ok(status)) => {
            eprintln!("jira-userprops: {base} is not healthy: /healthz answered {status}");
            ExitCode::FAILURE
        }
        Ok(Err(error)) => {
            eprintln!("jira-userprops: {base} did not answer: {error:#}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("jira-userprops: {base} did not answer within 5 s");
            ExitCode::FAILURE
        }
    }
}

/// Where the healthcheck of a base URL goes.
#[derive(Debug)]
struct HealthTarget {
    /// `host:port` to connect to, port 80 unless given.
    address: String,
    /// The base's path with `/healthz` after it.
    path: String,
    /// The Host header: the host, and the port when the URL names one.
    host: String,
}

impl HealthTarget {
    /// Reads a plain http:// base URL; user info, query and fragment have no place in it.
    fn of(base: &str) -> anyhow::Result<Self> {
        let url = match Url::parse(base) {
            Ok(url) if url.scheme() == "http" => url,
            // "127.0.0.1:8080" is relative; "localhost:8080" reads as the scheme "localhost".
            Ok(_) | Err(url::ParseError::RelativeUrlWithoutBase) => {
                anyhow::bail!("healthcheck speaks plain http:// only")
            }
            Err(error) => return Err(error).context("not a valid URL"),
        };
        anyhow::ensure!(
            url.username().is_empty() && url.password().is_none(),
            "healthcheck takes no user name or password"
        );
        anyhow::ensure!(
            url.query().is_none() && url.fragment().is_none(),
            "healthcheck takes a base URL, without query or fragment"
        );
        // Never `None` for http://, which needs a host; a bracketed IPv6 literal stays bracketed.
        let name = url.host_str().context("no host")?;
        let host = match url.port() {
            Some(port) => format!("{name}:{port}"),
            None => name.to_owned(),
        };
        Ok(Self {
            address: format!("{name}:{}", url.port().unwrap_or(80)),
            path: format!("{}/healthz", url.path().trim_end_matches('/')),
            host,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn target(base: &str) -> (String, String, String) {
        let target = HealthTarget::of(base).unwrap_or_else(|e| panic!("{base}: {e:#}"));
        (target.address, target.path, target.host)
    }

    #[test]
    fn healthchecks_go_to_the_healthz_under_the_base() {
        for (base, address, path, host) in [
            (
                "http://127.0.0.1:8080",
                "127.0.0.1:8080",
                "/healthz",
                "127.0.0.1:8080",
            ),
            (
                "http://127.0.0.1:8080/",
                "127.0.0.1:8080",
                "/healthz",
                "127.0.0.1:8080",
            ),
            ("http://[::1]:8080", "[::1]:8080", "/healthz", "[::1]:8080"),
            ("http://[::1]", "[::1]:80", "/healthz", "[::1]"),
            ("http://h:8080/jira", "h:8080", "/jira/healthz", "h:8080"),
            ("http://h:8080/jira/", "h:8080", "/jira/healthz", "h:8080"),
            ("http://h/a/b", "h:80", "/a/b/healthz", "h"),
            ("http://h", "h:80", "/healthz", "h"),
            ("http://h:80", "h:80", "/healthz", "h"),
            ("HTTP://H:8080", "h:8080", "/healthz", "h:8080"),
        ] {
            assert_eq!(
                target(base),
                (address.to_owned(), path.to_owned(), host.to_owned()),
                "{base}"
            );
        }
    }

    #[test]
    fn healthchecks_refuse_what_is_not_a_plain_http_base() {
        for (base, message) in [
            ("https://h", "plain http:// only"),
            ("127.0.0.1:8080", "plain http:// only"),
            ("localhost:8080", "plain http:// only"),
            ("", "plain http:// only"),
            ("http://", "not a valid URL"),
            ("http://[::1", "not a valid URL"),
            ("http://h:99999", "not a valid URL"),
            ("http://u:p@h", "no user name or password"),
            ("http://h/?x=1", "without query or fragment"),
            ("http://h/#x", "without query or fragment"),
        ] {
            match HealthTarget::of(base) {
                Ok(target) => panic!("{base:?} was taken: {target:?}"),
                Err(error) => assert!(
                    format!("{error:#}").contains(message),
                    "{base:?}: {error:#}"
                ),
            }
        }
    }
}
