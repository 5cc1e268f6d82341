//! Monitoring (README: Monitoring): the binary with `metrics_bind` serves `GET /metrics` on a
//! listener of its own and prints where; the public port has no `/metrics`. After a token, a
//! refused client secret and bearer checks with a good and a junk token, the scrape, read by a
//! Prometheus text-format parser, shows the counters, histograms and gauges moved.

// Helpers outside #[test] functions panic on failure too: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use prometheus_parse::{Sample, Scrape, Value};

use crate::cli::{Deployment, ServerProcess, api_user, post_token};

/// Scrapes `url` and parses the text format.
async fn scrape(http: &reqwest::Client, url: &str) -> Scrape {
    let response = http.get(url).send().await.expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.text().await.expect("body");
    Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).expect("the Prometheus text format")
}

/// The one sample of `metric` whose labels include `labels`.
fn sample<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> &'a Sample {
    let mut found = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)));
    let first = found.next().unwrap_or_else(|| panic!("no sample {metric}{labels:?}"));
    assert!(found.next().is_none(), "one sample {metric}{labels:?}");
    first
}

/// A counter's or gauge's value.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    match &sample(scrape, metric, labels).value {
        Value::Counter(v) | Value::Gauge(v) => *v,
        other => panic!("{metric}{labels:?} is not a counter or gauge: {other:?}"),
    }
}

/// How many observations a histogram holds (its `+Inf` bucket).
fn observations(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    match &sample(scrape, metric, labels).value {
        Value::Histogram(buckets) => {
            let mut buckets = buckets.clone();
            buckets.sort_by(|a, b| a.less_than.total_cmp(&b.less_than));
            assert!(
                buckets.windows(2).all(|w| w[0].count <= w[1].count),
                "cumulative buckets"
            );
            let all = buckets.last().expect("buckets");
            assert!(all.less_than.is_infinite(), "a +Inf bucket");
            all.count
        }
        other => panic!("{metric}{labels:?} is not a histogram: {other:?}"),
    }
}

backend_test! {
    /// `metrics_bind = "127.0.0.1:0"` in passport.toml: the printed address is the real one, the
    /// public port answers 404 for /metrics, and a scrape reflects the requests made.
    async fn metrics_are_served_apart_and_count_what_happened(db) {
        let site = Deployment::new(db);
        site.write_config("metrics_bind = \"127.0.0.1:0\"\n");
        site.keys();
        let (id, secret) = site.client(&["--client", "--name", "Service"]);
        let secret = secret.expect("confidential");
        let server: ServerProcess = site.serve();
        let line = server.next_line();
        let metrics_url = line
            .strip_prefix("metrics on ")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"))
            .to_owned();
        assert!(metrics_url.starts_with("http://127.0.0.1:"), "{metrics_url}");
        assert!(metrics_url.ends_with("/metrics"), "{metrics_url}");
        assert!(!metrics_url.ends_with(":0/metrics"), "the bound port is printed: {metrics_url}");
        assert_ne!(metrics_url, server.url("/metrics"), "a port of its own");
        let http = reqwest::Client::new();

        let public = http.get(server.url("/metrics")).send().await.unwrap();
        assert_eq!(public.status(), 404, "no metrics on the public port");

        let token_url = server.url("/oauth/token");
        let form = [("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)];
        let (status, body) = post_token(&http, &token_url, &form).await;
        assert_eq!(status, 200, "{body}");
        let token = body["access_token"].as_str().unwrap().to_owned();
        let wrong = [("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", "wrong")];
        let (status, body) = post_token(&http, &token_url, &wrong).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
        // A client's token is no user, but its check succeeds; the second check of the same
        // token comes from the cache.
        assert_eq!(api_user(&http, &server, &token).await.0, 401);
        let claims = http.get(server.url("/api/token")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(claims.status(), 200);
        assert_eq!(api_user(&http, &server, "junk").await.0, 401);

        // The event listener runs on a thread of its own: wait for it to catch up.
        let started = Instant::now();
        let scraped = loop {
            let scraped = scrape(&http, &metrics_url).await;
            if value(&scraped, "passport_events_delivered_total", &[]) >= 2.0
                || started.elapsed() > Duration::from_secs(5)
            {
                break scraped;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(value(&scraped, "passport_build_info", &[("version", version)]), 1.0);
        let issued = [("grant", "client_credentials"), ("alg", "RS256")];
        assert!(value(&scraped, "passport_tokens_issued_total", &issued) >= 1.0);
        assert_eq!(value(&scraped, "passport_tokens_issued_total", &[("grant", "password"), ("alg", "RS256")]), 0.0);
        assert_eq!(value(&scraped, "passport_token_errors_total", &[("error", "invalid_client")]), 1.0);
        assert_eq!(value(&scraped, "passport_bearer_checks_total", &[("outcome", "valid")]), 2.0);
        assert_eq!(value(&scraped, "passport_bearer_checks_total", &[("outcome", "malformed")]), 1.0);
        let token_cache = |result| {
            value(&scraped, "passport_cache_lookups_total", &[("cache", "token"), ("result", result)])
        };
        assert_eq!(token_cache("hit") + token_cache("miss"), 3.0);
        assert!(token_cache("hit") >= 1.0, "the second check of one token is a hit");
        assert!(value(&scraped, "passport_events_delivered_total", &[]) >= 2.0);
        assert_eq!(value(&scraped, "passport_events_dropped_total", &[]), 0.0);

        let route = |status| [("route", "/oauth/token"), ("method", "POST"), ("status", status)];
        let latency = "passport_http_request_duration_seconds";
        assert_eq!(observations(&scraped, latency, &route("2xx")), 1.0);
        assert_eq!(observations(&scraped, latency, &route("4xx")), 1.0);
        let api_user_route = [("route", "/api/user"), ("method", "GET"), ("status", "4xx")];
        assert_eq!(observations(&scraped, latency, &api_user_route), 2.0);
        let mut latencies = scraped.samples.iter().filter(|s| s.metric == latency);
        assert!(
            latencies.all(|s| !s.labels.values().any(|v| v.contains("junk"))),
            "labels never carry what the request sent"
        );
        let store = "passport_store_query_duration_seconds";
        assert!(observations(&scraped, store, &[("op", "token_status")]) >= 1.0);

        assert!(value(&scraped, "passport_db_pool_max_connections", &[("pool", "main")]) >= 1.0);
        let idle = value(&scraped, "passport_db_pool_connections", &[("pool", "main"), ("state", "idle")]);
        let in_use = value(&scraped, "passport_db_pool_connections", &[("pool", "main"), ("state", "in_use")]);
        assert!(idle + in_use >= 1.0, "the pool has a connection open");
    }
}
