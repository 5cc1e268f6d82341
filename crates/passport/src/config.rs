//! Configuration, phase one: plain data read from `passport.toml` and `PASSPORT_*` environment
//! variables. Phase two is [`crate::PassportBuilder`], whose `build()` checks consistency, loads
//! keys and fails fast.

use chrono::TimeDelta;
use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};

/// A configuration error, with a message fit for an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Every setting of `passport.toml`; each is also settable as `PASSPORT_<KEY>`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PassportConfig {
    /// Public base URL of the server (e.g. `https://auth.example.com`).
    pub issuer: Option<String>,
    /// Scope id → description, in the order they are listed.
    pub scopes: IndexMap<String, String>,
    /// Scopes given when a request names none (a list, or a space/comma separated string).
    #[serde(deserialize_with = "string_or_list")]
    pub default_scopes: Vec<String>,
    /// Access token lifetime, e.g. `"1y"`, `"15d"`, `"3600s"` (default one year).
    pub tokens_expire_in: Option<String>,
    /// Refresh token lifetime (default one year).
    pub refresh_tokens_expire_in: Option<String>,
    /// Personal access token lifetime (default one year).
    pub personal_access_tokens_expire_in: Option<String>,
    /// Allow the password grant (off by default).
    pub enable_password_grant: bool,
    /// Allow the implicit grant (off by default).
    pub enable_implicit_grant: bool,
    /// DPoP proofs must carry a server nonce (RFC 9449 §8, §9; off by default).
    pub use_dpop_nonce: bool,
    /// Allow plain `http` redirect URIs to non-loopback hosts (off by default).
    pub insecure_http_redirect_uris: bool,
    /// `a` satisfies a check for `a:b`.
    pub inherited_scopes: bool,
    /// Every client must push its authorization requests first (RFC 9126 §5; off by default).
    pub require_pushed_authorization_requests: bool,
    /// Name of the SPA token cookie.
    pub cookie: Option<String>,
    /// Route prefix (default `oauth`).
    pub path: Option<String>,
    /// Session lifetime, e.g. `"2h"`.
    pub session_lifetime: Option<String>,
    /// Requests per minute and client address allowed on `/oauth/token`, successful or not
    /// (default 0: off).
    pub token_rate_limit: Option<u32>,
    /// Login attempts per minute and client address on `POST /login` (default 0 = off).
    pub login_rate_limit: Option<u32>,
    /// Failed client authentications (and wrong user credentials) per minute, per client and
    /// address (default 10; 0 = off).
    pub client_auth_failures_per_client: Option<u32>,
    /// The same, per address (default 100).
    pub client_auth_failures_per_address: Option<u32>,
    /// Failed sign-ins per minute, per account and address (default 5).
    pub login_failures_per_account: Option<u32>,
    /// Failed sign-ins per minute, per address (default 100).
    pub login_failures_per_address: Option<u32>,
    /// Seconds after a refresh token's rotation during which the same client presenting it
    /// again gets a fresh pair (the unused one is revoked) instead of the family being revoked
    /// (default 0: off).
    pub refresh_token_reuse_grace: Option<u32>,
    /// How long `passport keys rotate` publishes a new key before it signs (default the JWKS
    /// max-age, `"5m"`).
    pub key_publish_ahead: Option<String>,
    /// `serve`: reverse proxies (addresses or networks) whose `Forwarded` / `X-Forwarded-For`
    /// headers name the client address the limits count (default none).
    #[serde(deserialize_with = "string_or_list")]
    pub trusted_proxies: Vec<String>,
    /// `serve`: connections open at once, in total (default 160).
    pub max_connections: Option<usize>,
    /// `serve`: connections open at once from one address, IPv6 by /64 (default 32).
    pub max_connections_per_address: Option<usize>,
    /// `serve`: how long a request's headers may take to arrive, and how long an idle
    /// keep-alive connection is kept (default `"10s"`).
    pub header_read_timeout: Option<String>,
    /// `serve`: the longest a request may take, body included (default `"30s"`).
    pub request_timeout: Option<String>,
    /// Database connections one process opens at most (default 16 on PostgreSQL, 8 on SQLite).
    pub database_max_connections: Option<u32>,
    /// How long a request waits for a database connection (and, on SQLite, for a lock) before
    /// it is answered 503 `temporarily_unavailable` (default `"10s"`).
    pub database_acquire_timeout: Option<String>,
    /// `serve`: how often expired rows are purged in the background, in bounded batches, as
    /// `passport purge --expired` does (default `"1h"`; `"off"` to leave it to a scheduler).
    pub purge_interval: Option<String>,
    /// Log lines as `"text"` (default) or `"json"` (one object per line).
    pub log_format: Option<String>,
    /// Apply the FAPI 2.0 Security Profile to every client (default false).
    pub fapi_profile: bool,
    /// Who may register clients at `POST /oauth/register` (RFC 7591): `"off"` (default),
    /// `"open"`, or `"token"` (an initial access token from `passport client registration-token`).
    pub client_registration: Option<String>,
    /// `serve`: the address (`host:port`) of a listener of its own serving `GET /metrics` in
    /// the Prometheus text format (default none: no metrics endpoint at all; never on the
    /// public port).
    pub metrics_bind: Option<String>,
    /// Private key PEM (normally from `PASSPORT_PRIVATE_KEY`).
    pub private_key: Option<String>,
    /// Public key PEM (normally from `PASSPORT_PUBLIC_KEY`).
    pub public_key: Option<String>,
    /// The secret every instance shares (base64 or hex, at least 32 bytes; normally from
    /// `PASSPORT_SERVER_SECRET`). Without it the server keeps one in the database.
    pub server_secret: Option<String>,
    /// `"laravel"`: run on an existing Laravel Passport deployment's database, keys and
    /// `APP_KEY`, honouring what Passport issued and issuing what its `TokenGuard` accepts
    /// (`docs/laravel.md`). Default off.
    pub compat: Option<String>,
    /// Which Passport's behaviour compatibility keeps: `12` (also for 11) or `13` (default).
    pub compat_version: Option<u32>,
    /// The Laravel `APP_KEY` (`base64:…` or raw), which decrypts Passport's refresh tokens and
    /// authorization codes (normally from `PASSPORT_LARAVEL_APP_KEY`).
    pub laravel_app_key: Option<String>,
    /// Users from a Laravel application's table (`[laravel_users]`; environment:
    /// `PASSPORT_LARAVEL_USERS_TABLE`, `…_ID`, `…_NAME`, `…_EMAIL`, `…_PASSWORD`,
    /// `…_BCRYPT_ROUNDS`). None: the server's own `passport_users`.
    pub laravel_users: Option<LaravelUsersConfig>,
}

/// Where a Laravel application keeps its users: the table and the names of its columns
/// (Laravel's defaults: `users` with `id`, `name`, `email`, `password`). Names are exact
/// identifiers (letters, digits and `_`; the table may carry one `schema.` prefix), checked
/// and quoted by the SQL adapter, never pasted into SQL as given.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LaravelUsersConfig {
    /// The table (default `users`).
    pub table: String,
    /// The primary key column, an integer (`bigint unsigned` in Laravel's migration; default
    /// `id`).
    pub id: String,
    /// The display name column (default `name`).
    pub name: String,
    /// The login column, matched case-insensitively (default `email`).
    pub email: String,
    /// The password hash column, bcrypt or argon2 as Laravel writes them (default
    /// `password`).
    pub password: String,
    /// The bcrypt cost the application hashes with (Laravel's `BCRYPT_ROUNDS`, default 12):
    /// the dummy check for unknown users uses it while the table has no hash to copy.
    pub bcrypt_rounds: u32,
}

impl Default for LaravelUsersConfig {
    fn default() -> Self {
        Self {
            table: "users".to_owned(),
            id: "id".to_owned(),
            name: "name".to_owned(),
            email: "email".to_owned(),
            password: "password".to_owned(),
            bcrypt_rounds: 12,
        }
    }
}

impl std::fmt::Debug for PassportConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassportConfig")
            .field("issuer", &self.issuer)
            .field("scopes", &self.scopes)
            .field("default_scopes", &self.default_scopes)
            .field("tokens_expire_in", &self.tokens_expire_in)
            .field("refresh_tokens_expire_in", &self.refresh_tokens_expire_in)
            .field(
                "personal_access_tokens_expire_in",
                &self.personal_access_tokens_expire_in,
            )
            .field("enable_password_grant", &self.enable_password_grant)
            .field("enable_implicit_grant", &self.enable_implicit_grant)
            .field("use_dpop_nonce", &self.use_dpop_nonce)
            .field("path", &self.path)
            .field("private_key", &self.private_key.as_ref().map(|_| "[redacted]"))
            .field("server_secret", &self.server_secret.as_ref().map(|_| "[redacted]"))
            .field("compat", &self.compat)
            .field("compat_version", &self.compat_version)
            .field("laravel_app_key", &self.laravel_app_key.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Either::deserialize(d)? {
        Either::One(s) => split_list(&s),
        Either::Many(v) => v,
    })
}

fn split_list(s: &str) -> Vec<String> {
    s.split([' ', ','])
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(ConfigError(format!("{key}: expected true or false, got {value:?}"))),
    }
}

fn parse_count(key: &str, value: &str) -> Result<u32, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError(format!("{key}: expected a whole number")))
}

impl PassportConfig {
    /// Laravel compatibility as configured: `None` when `compat` is unset (or `"off"`), an
    /// error naming what is wrong otherwise (an unknown mode or version, no `APP_KEY`).
    pub fn laravel_compat(&self) -> Result<Option<crate::laravel::LaravelCompat>, ConfigError> {
        use crate::laravel::{LaravelCompat, PassportVersion};
        match self
            .compat
            .as_deref()
            .map(str::trim)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("" | "off" | "none") => {
                if self.compat_version.is_some() {
                    return Err(ConfigError("compat_version needs compat = \"laravel\"".into()));
                }
                Ok(None)
            }
            Some("laravel") => {
                let version = match self.compat_version {
                    None => PassportVersion::V13,
                    Some(n) => PassportVersion::from_number(n)
                        .ok_or_else(|| ConfigError(format!("compat_version: expected 11, 12 or 13, got {n}")))?,
                };
                let key = self.laravel_app_key.as_deref().ok_or_else(|| {
                    ConfigError(
                        "compat = \"laravel\" needs laravel_app_key (the Laravel APP_KEY, or \
                         PASSPORT_LARAVEL_APP_KEY)"
                            .into(),
                    )
                })?;
                LaravelCompat::new(version, key).map(Some)
            }
            Some(other) => Err(ConfigError(format!(
                "compat: expected \"laravel\" or \"off\", got {other:?}"
            ))),
        }
    }

    /// Parses `passport.toml` text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(format!("passport.toml: {}", e.message())))
    }

    /// Overlays `PASSPORT_*` variables from `vars` (pass `std::env::vars()`). Unknown
    /// `PASSPORT_` variables are ignored, since the CLI has its own.
    pub fn apply_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) -> Result<(), ConfigError> {
        for (name, value) in vars {
            let Some(key) = name.strip_prefix("PASSPORT_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            match key.as_str() {
                "issuer" => self.issuer = Some(value),
                "scopes" => {
                    let parsed: toml::Table = toml::from_str(&format!("v = {value}")).map_err(|_| {
                        ConfigError(format!(
                            "{name}: expected a TOML inline table like {{ read = \"Read data\" }}"
                        ))
                    })?;
                    let table = parsed
                        .get("v")
                        .and_then(toml::Value::as_table)
                        .ok_or_else(|| ConfigError(format!("{name}: expected a table")))?;
                    self.scopes = table
                        .iter()
                        .map(|(k, v)| {
                            v.as_str()
                                .map(|d| (k.clone(), d.to_owned()))
                                .ok_or_else(|| ConfigError(format!("{name}: description of {k} must be a string")))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "default_scopes" => self.default_scopes = split_list(&value),
                "tokens_expire_in" => self.tokens_expire_in = Some(value),
                "refresh_tokens_expire_in" => self.refresh_tokens_expire_in = Some(value),
                "personal_access_tokens_expire_in" => self.personal_access_tokens_expire_in = Some(value),
                "enable_password_grant" => self.enable_password_grant = parse_bool(&name, &value)?,
                "enable_implicit_grant" => self.enable_implicit_grant = parse_bool(&name, &value)?,
                "insecure_http_redirect_uris" => self.insecure_http_redirect_uris = parse_bool(&name, &value)?,
                "inherited_scopes" => self.inherited_scopes = parse_bool(&name, &value)?,
                "require_pushed_authorization_requests" => {
                    self.require_pushed_authorization_requests = parse_bool(&name, &value)?;
                }
                "use_dpop_nonce" => self.use_dpop_nonce = parse_bool(&name, &value)?,
                "cookie" => self.cookie = Some(value),
                "path" => self.path = Some(value),
                "session_lifetime" => self.session_lifetime = Some(value),
                "token_rate_limit" => self.token_rate_limit = Some(parse_count(&name, &value)?),
                "login_rate_limit" => self.login_rate_limit = Some(parse_count(&name, &value)?),
                "client_auth_failures_per_client" => {
                    self.client_auth_failures_per_client = Some(parse_count(&name, &value)?);
                }
                "client_auth_failures_per_address" => {
                    self.client_auth_failures_per_address = Some(parse_count(&name, &value)?);
                }
                "login_failures_per_account" => self.login_failures_per_account = Some(parse_count(&name, &value)?),
                "login_failures_per_address" => self.login_failures_per_address = Some(parse_count(&name, &value)?),
                "refresh_token_reuse_grace" => self.refresh_token_reuse_grace = Some(parse_count(&name, &value)?),
                "trusted_proxies" => self.trusted_proxies = split_list(&value),
                "key_publish_ahead" => self.key_publish_ahead = Some(value),
                "max_connections" => self.max_connections = Some(parse_count(&name, &value)? as usize),
                "max_connections_per_address" => {
                    self.max_connections_per_address = Some(parse_count(&name, &value)? as usize);
                }
                "header_read_timeout" => self.header_read_timeout = Some(value),
                "request_timeout" => self.request_timeout = Some(value),
                "database_max_connections" => self.database_max_connections = Some(parse_count(&name, &value)?),
                "database_acquire_timeout" => self.database_acquire_timeout = Some(value),
                "purge_interval" => self.purge_interval = Some(value),
                "log_format" => self.log_format = Some(value),
                "client_registration" => self.client_registration = Some(value),
                "fapi_profile" => self.fapi_profile = parse_bool(&name, &value)?,
                "metrics_bind" => self.metrics_bind = Some(value),
                "private_key" => self.private_key = Some(value),
                "public_key" => self.public_key = Some(value),
                "server_secret" => self.server_secret = Some(value),
                "compat" => self.compat = Some(value),
                "compat_version" => self.compat_version = Some(parse_count(&name, &value)?),
                "laravel_app_key" => self.laravel_app_key = Some(value),
                laravel if laravel.starts_with("laravel_users_") => {
                    let users = self.laravel_users.get_or_insert_with(LaravelUsersConfig::default);
                    match &laravel["laravel_users_".len()..] {
                        "table" => users.table = value,
                        "id" => users.id = value,
                        "name" => users.name = value,
                        "email" => users.email = value,
                        "password" => users.password = value,
                        "bcrypt_rounds" => users.bcrypt_rounds = parse_count(&name, &value)?,
                        _ => return Err(ConfigError(format!("{name}: no such laravel_users setting"))),
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Parses a lifetime: `"3600"` (seconds), `"90s"`, `"15m"`, `"12h"`, `"15d"`, `"2w"`, `"1y"`
/// (365 days), combinations such as `"1h30m"`, or ISO 8601 such as `"P1Y"`, `"PT1H"`.
pub fn parse_duration(text: &str) -> Result<TimeDelta, ConfigError> {
    let bad = || {
        ConfigError(format!(
            "invalid duration {text:?}: use e.g. 3600s, 15m, 12h, 15d, 1y or P1Y"
        ))
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = trimmed.parse::<i64>() {
        return positive(TimeDelta::try_seconds(secs).ok_or_else(bad)?, text);
    }
    let (iso, body) = match trimmed.strip_prefix(['P', 'p']) {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut in_time = false;
    for c in body.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        if iso && (c == 'T' || c == 't') {
            in_time = true;
            continue;
        }
        let n: i64 = number.parse().map_err(|_| bad())?;
        number.clear();
        let unit: i64 = match (c.to_ascii_lowercase(), iso, in_time) {
            ('s', _, _) => 1,
            ('m', false, _) | ('m', true, true) => 60,
            ('m', true, false) => 30 * 86_400,
            ('h', _, _) => 3_600,
            ('d', _, _) => 86_400,
            ('w', _, _) => 7 * 86_400,
            ('y', _, _) => 365 * 86_400,
            _ => return Err(bad()),
        };
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
    }
    if !number.is_empty() {
        return Err(bad());
    }
    positive(TimeDelta::try_seconds(total).ok_or_else(bad)?, text)
}

fn positive(d: TimeDelta, text: &str) -> Result<TimeDelta, ConfigError> {
    if d <= TimeDelta::zero() {
        return Err(ConfigError(format!(
            "invalid duration {text:?}: must be longer than zero"
        )));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3600").unwrap(), TimeDelta::seconds(3600));
        assert_eq!(parse_duration("15d").unwrap(), TimeDelta::days(15));
        assert_eq!(parse_duration("1h30m").unwrap(), TimeDelta::minutes(90));
        assert_eq!(parse_duration("1y").unwrap(), TimeDelta::days(365));
        assert_eq!(parse_duration("P1Y").unwrap(), TimeDelta::days(365));
        assert_eq!(parse_duration("PT10M").unwrap(), TimeDelta::minutes(10));
        for bad in ["", "abc", "10x", "0", "-5", "5d3", "99999999999999999999y"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn toml_and_env() {
        let mut cfg =
            PassportConfig::from_toml("default_scopes = \"b a\"\n[scopes]\nb = \"Bee\"\na = \"Ay\"\n").unwrap();
        assert_eq!(cfg.scopes.keys().collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(cfg.default_scopes, ["b", "a"]);
        cfg.apply_env([
            ("PASSPORT_ENABLE_PASSWORD_GRANT".to_owned(), "true".to_owned()),
            ("PASSPORT_SCOPES".to_owned(), "{ x = \"Ex\", y = \"Why\" }".to_owned()),
            ("PASSPORT_METRICS_BIND".to_owned(), "127.0.0.1:9464".to_owned()),
            (
                "PASSPORT_REQUIRE_PUSHED_AUTHORIZATION_REQUESTS".to_owned(),
                "true".to_owned(),
            ),
            ("OTHER".to_owned(), "1".to_owned()),
        ])
        .unwrap();
        assert!(cfg.enable_password_grant);
        assert!(cfg.require_pushed_authorization_requests);
        assert_eq!(cfg.metrics_bind.as_deref(), Some("127.0.0.1:9464"));
        let from_file = PassportConfig::from_toml("metrics_bind = \"127.0.0.1:0\"\n").unwrap();
        assert_eq!(from_file.metrics_bind.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(cfg.scopes.keys().collect::<Vec<_>>(), ["x", "y"]);
        assert!(PassportConfig::from_toml("nope = 1").is_err());
    }

    #[test]
    fn laravel_users_from_toml_and_env() {
        assert_eq!(PassportConfig::default().laravel_users, None);
        let cfg = PassportConfig::from_toml("[laravel_users]\n").unwrap();
        assert_eq!(cfg.laravel_users, Some(LaravelUsersConfig::default()));
        let defaults = LaravelUsersConfig::default();
        assert_eq!(
            (defaults.table.as_str(), defaults.id.as_str(), defaults.name.as_str()),
            ("users", "id", "name")
        );
        assert_eq!(
            (defaults.email.as_str(), defaults.password.as_str()),
            ("email", "password")
        );
        assert_eq!(defaults.bcrypt_rounds, 12);

        let mut cfg =
            PassportConfig::from_toml("[laravel_users]\ntable = \"app.members\"\nemail = \"login\"\n").unwrap();
        let users = cfg.laravel_users.clone().unwrap();
        assert_eq!((users.table.as_str(), users.email.as_str()), ("app.members", "login"));
        assert_eq!(users.password, "password", "the others keep their defaults");
        assert!(PassportConfig::from_toml("[laravel_users]\ncolour = \"red\"\n").is_err());

        cfg.apply_env([
            ("PASSPORT_LARAVEL_USERS_PASSWORD".to_owned(), "pass_hash".to_owned()),
            ("PASSPORT_LARAVEL_USERS_BCRYPT_ROUNDS".to_owned(), "10".to_owned()),
        ])
        .unwrap();
        let users = cfg.laravel_users.unwrap();
        assert_eq!(
            (users.table.as_str(), users.password.as_str()),
            ("app.members", "pass_hash")
        );
        assert_eq!(users.bcrypt_rounds, 10);

        let mut cfg = PassportConfig::default();
        cfg.apply_env([("PASSPORT_LARAVEL_USERS_TABLE".to_owned(), "members".to_owned())])
            .unwrap();
        assert_eq!(
            cfg.laravel_users.unwrap().table,
            "members",
            "the variable alone turns it on"
        );
        let mut cfg = PassportConfig::default();
        assert!(
            cfg.apply_env([("PASSPORT_LARAVEL_USERS_COLOUR".to_owned(), "red".to_owned())])
                .is_err()
        );
    }
}
