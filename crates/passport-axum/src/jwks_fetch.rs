//! Fetching the JWK Set a `private_key_jwt` client publishes at its `jwks_uri` (RFC 7591 §2),
//! bounded, because the address is the client's choice and the fetch is the server's: https
//! only; the host's addresses resolved first and every one refused unless it is a public
//! unicast address (no loopback, private, link-local, shared, documentation or multicast
//! address, so a client cannot point the server at its own network), the connection pinned to
//! the checked address (no second lookup to rebind); no redirects; 5 s in all; 64 KiB at most.
//! The core caches what it fetches for five minutes ([`passport::JwksFetcher`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use passport::JwksFetcher;

/// The largest key set read.
const MAX_BYTES: usize = 64 * 1024;
/// The whole fetch, connection included.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The bounded HTTPS fetcher of `jwks_uri` key sets (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct HttpJwksFetcher {
    insecure_loopback: bool,
}

impl HttpJwksFetcher {
    /// The fetcher with every limit on.
    pub fn new() -> Self {
        Self::default()
    }

    /// For tests and local development only: also fetch `http://` URLs whose host is a
    /// loopback address (`127.0.0.1`, `::1`). Everything else keeps its limits.
    pub fn allow_insecure_loopback(mut self, on: bool) -> Self {
        self.insecure_loopback = on;
        self
    }
}

/// Whether `ip` is an address a fetch may go to: public unicast only.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x0064 && s[1] == 0xff9b))
        }
    }
}

#[async_trait::async_trait]
impl JwksFetcher for HttpJwksFetcher {
    async fn fetch(&self, uri: &str) -> Result<String, String> {
        let url = url::Url::parse(uri).map_err(|_| "not an absolute URL".to_owned())?;
        let host = url.host_str().ok_or("no host")?.to_owned();
        let port = url.port_or_known_default().ok_or("no port")?;
        let loopback_ok = self.insecure_loopback
            && host
                .trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        match url.scheme() {
            "https" => {}
            "http" if loopback_ok => {}
            _ => return Err("jwks_uri must be https".to_owned()),
        }
        let lookup = tokio::time::timeout(TIMEOUT, tokio::net::lookup_host((host.as_str(), port)))
            .await
            .map_err(|_| "the host did not resolve in time".to_owned())?
            .map_err(|e| format!("the host does not resolve: {e}"))?;
        let addresses: Vec<SocketAddr> = lookup.collect();
        if addresses.is_empty() {
            return Err("the host has no address".to_owned());
        }
        if let Some(bad) = addresses.iter().find(|a| !(is_public(a.ip()) || loopback_ok)) {
            return Err(format!(
                "the host resolves to {}, which is not a public address",
                bad.ip()
            ));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(TIMEOUT)
            .resolve(&host, addresses[0])
            .build()
            .map_err(|e| e.to_string())?;
        let mut response = client
            .get(url)
            .header("accept", "application/jwk-set+json, application/json")
            .send()
            .await
            .map_err(|e| format!("the request failed: {e}"))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("answered {} (redirects are not followed)", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("the body failed: {e}"))? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(format!("the key set is larger than {MAX_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| "the key set is not UTF-8".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_may_be_fetched() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn plain_http_and_private_hosts_are_refused() {
        let strict = HttpJwksFetcher::new();
        for uri in [
            "http://93.184.216.34/jwks",
            "https://127.0.0.1/jwks",
            "https://10.0.0.1/jwks",
            "https://[::1]/jwks",
            "ftp://example.com/jwks",
            "not a url",
        ] {
            assert!(strict.fetch(uri).await.is_err(), "{uri}");
        }
        let loopback = HttpJwksFetcher::new().allow_insecure_loopback(true);
        assert!(loopback.fetch("http://10.0.0.1/jwks").await.is_err(), "only loopback");
    }
}
