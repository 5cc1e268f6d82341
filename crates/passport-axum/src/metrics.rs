//! Monitoring over HTTP: `GET /metrics` in the Prometheus text format ([`metrics_router`]) and
//! the request latency histograms of the routes it serves ([`record_requests`]).
//!
//! Requests are labelled by the route's template as axum matched it (`/oauth/clients/{id}`,
//! never the path that was asked for, so ids and codes stay out of the labels and the label set
//! is bounded by the router), by method (the usual eight, others as `OTHER`) and by status class
//! (`2xx` … `5xx`). A request no route matched is labelled `unmatched`. Each route's
//! histograms are made the first time it is seen; after that a request costs a lock-free map
//! lookup and three relaxed atomic additions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use passport::{Collect, Exposition, Histogram, Passport};

/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: every family of `passport.metrics()` (the core's, and those registered by
/// [`record_requests`] or the SQL crate's pool gauges), in the Prometheus text format.
///
/// Serve it where only your monitoring can reach it (the standalone server uses a listener of
/// its own, `metrics_bind`), not on the public port: it tells how the server is used.
///
/// ```no_run
/// # async fn demo(passport: passport::Passport, app: axum::Router) -> std::io::Result<()> {
/// // The public app, with the latencies of its routes recorded:
/// let app = passport_axum::record_requests(app, &passport);
/// // The metrics, on a loopback port of their own:
/// let metrics = tokio::net::TcpListener::bind("127.0.0.1:9464").await?;
/// tokio::spawn(passport_axum::serve(metrics, passport_axum::metrics_router(&passport)).into_future());
/// # Ok(()) }
/// ```
pub fn metrics_router(passport: &Passport) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(passport.clone())
}

async fn scrape(State(passport): State<Passport>) -> Response {
    let mut response = passport.metrics().render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// `router` with the duration of every request recorded in
/// `passport_http_request_duration_seconds{route, method, status}` (see the module
/// documentation), rendered by [`metrics_router`]. Add it after the routes (it wraps those
/// already added) and outermost among your layers, so their time counts too. Several routers
/// of one `Passport` share one set of histograms.
pub fn record_requests(router: Router, passport: &Passport) -> Router {
    let requests = passport.metrics().collector(RequestMetrics::default);
    router.layer(axum::middleware::from_fn_with_state(requests, record))
}

async fn record(State(requests): State<Arc<RequestMetrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_index(request.method());
    // The template's `Arc<str>`, cloned: the request itself moves on.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let class = usize::from(response.status().as_u16() / 100).clamp(1, 5) - 1;
    let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    requests.observe(route, method, class, started);
    response
}

/// The route label of requests no route matched.
const UNMATCHED: &str = "unmatched";

const METHODS: [&str; 8] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn method_index(method: &Method) -> usize {
    METHODS[..7].iter().position(|m| *m == method.as_str()).unwrap_or(7)
}

/// One route's histograms, by method and status class.
#[derive(Debug)]
struct RouteSeries {
    by: [Histogram; METHODS.len() * CLASSES.len()],
}

impl Default for RouteSeries {
    fn default() -> Self {
        Self {
            by: std::array::from_fn(|_| Histogram::default()),
        }
    }
}

/// The request histograms of every route seen so far, copied on write (a new route is rare;
/// reads never lock).
#[derive(Debug, Default)]
pub(crate) struct RequestMetrics {
    routes: ArcSwap<HashMap<Box<str>, Arc<RouteSeries>>>,
}

impl RequestMetrics {
    fn observe(&self, route: &str, method: usize, class: usize, started: Instant) {
        let series = match self.routes.load().get(route) {
            Some(series) => series.clone(),
            None => self.add(route),
        };
        series.by[method * CLASSES.len() + class].observe(started.elapsed());
    }

    /// The series of a route seen for the first time (or just added by another request).
    fn add(&self, route: &str) -> Arc<RouteSeries> {
        let mut added = None;
        self.routes.rcu(|routes| {
            let mut routes = HashMap::clone(routes);
            let series = routes.entry(route.into()).or_default().clone();
            added = Some(series);
            routes
        });
        added.unwrap_or_default()
    }
}

impl Collect for RequestMetrics {
    fn collect(&self, out: &mut Exposition) {
        const NAME: &str = "passport_http_request_duration_seconds";
        out.family(
            NAME,
            "histogram",
            "HTTP requests, by route template, method and status class.",
        );
        let routes = self.routes.load();
        let mut names: Vec<&str> = routes.keys().map(|r| &**r).collect();
        names.sort_unstable();
        for route in names {
            let series = &routes[route];
            for (m, method) in METHODS.iter().enumerate() {
                for (c, class) in CLASSES.iter().enumerate() {
                    let histogram = &series.by[m * CLASSES.len() + c];
                    if histogram.count() > 0 {
                        out.histogram(
                            NAME,
                            &[("route", route), ("method", method), ("status", class)],
                            histogram,
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt as _;

    #[tokio::test]
    async fn requests_are_labelled_by_their_route_template_never_their_path() {
        let passport = Passport::for_tests();
        let app = Router::new().route("/items/{id}", get(|| async { "item" }));
        let app = record_requests(app, &passport);
        for path in ["/items/secret-1", "/items/secret-2", "/nowhere"] {
            let request = axum::http::Request::get(path).body(Body::empty()).unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
        let response = metrics_router(&passport)
            .oneshot(axum::http::Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        let count = "passport_http_request_duration_seconds_count";
        assert!(
            text.contains(&format!(
                "{count}{{route=\"/items/{{id}}\",method=\"GET\",status=\"2xx\"}} 2\n"
            )),
            "{text}"
        );
        assert!(text.contains(&format!(
            "{count}{{route=\"unmatched\",method=\"GET\",status=\"4xx\"}} 1\n"
        )));
        assert!(!text.contains("secret"), "{text}");
        // A second router of the same Passport shares the histograms: one family.
        let _again = record_requests(Router::new().route("/x", get(|| async {})), &passport);
        let text = passport.metrics().render();
        assert_eq!(
            text.matches("# TYPE passport_http_request_duration_seconds histogram")
                .count(),
            1
        );
    }
}
