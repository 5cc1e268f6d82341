//! What every dialect shares: reading rows into the core's records (one mapper per record,
//! written once against [`Columns`]), the JSON encoding of list columns, the list of columns
//! each `SELECT` reads, and the mapping of driver errors. The SQL itself lives in one file per
//! dialect (`sqlite.rs`, `postgres.rs`, `mysql.rs`).

use chrono::{DateTime, Utc};
use passport::{
    AccessTokenRecord, AuthCodeRecord, AuthorizationExtensions, Client, DeviceCodeRecord, GrantType, PkceMethod,
    RedirectUri, RefreshTokenRecord, ScopeSet, SessionRecord, StoreError, TokenStatus,
};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::users::UserRow;

/// Typed reads of a row's columns, for any driver whose rows decode these types.
pub(crate) trait Columns {
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn flag(&self, column: &str) -> Result<bool, sqlx::Error>;
    fn time(&self, column: &str) -> Result<DateTime<Utc>, sqlx::Error>;
    fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error>;
    fn int32(&self, column: &str) -> Result<i32, sqlx::Error>;
    fn int64(&self, column: &str) -> Result<i64, sqlx::Error>;
}

impl<R> Columns for R
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database>,
    String: Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database>,
    bool: Type<R::Database>,
    for<'r> DateTime<Utc>: Decode<'r, R::Database>,
    DateTime<Utc>: Type<R::Database>,
    for<'r> i32: Decode<'r, R::Database>,
    i32: Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database>,
    i64: Type<R::Database>,
{
    fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        match self.try_get(column) {
            Err(err @ sqlx::Error::ColumnDecode { .. }) => integer_text(self, column).ok_or(err),
            other => other,
        }
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        match self.try_get::<Option<String>, _>(column) {
            Err(err @ sqlx::Error::ColumnDecode { .. }) => match integer_text(self, column) {
                Some(text) => Ok(Some(text)),
                None => Err(err),
            },
            other => other,
        }
    }
    fn flag(&self, column: &str) -> Result<bool, sqlx::Error> {
        self.try_get(column)
    }
    fn time(&self, column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
        self.try_get(column)
    }
    fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        self.try_get(column)
    }
    fn int32(&self, column: &str) -> Result<i32, sqlx::Error> {
        self.try_get(column)
    }
    fn int64(&self, column: &str) -> Result<i64, sqlx::Error> {
        self.try_get(column)
    }
}

/// An id column a Laravel database keeps as an integer (`bigIncrements`, `unsignedBigInteger`:
/// SQLite `INTEGER`, MySQL `BIGINT UNSIGNED`), read as the decimal text our ids are. Only for
/// columns whose declared type is an integer type.
fn integer_text<R>(row: &R, column: &str) -> Option<String>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database>,
    i64: Type<R::Database>,
{
    use sqlx::{Column as _, TypeInfo as _};
    let index = column.index(row).ok()?;
    let declared = row.columns().get(index)?.type_info().name().to_ascii_uppercase();
    if !declared.contains("INT") {
        return None;
    }
    // Unchecked: MySQL's unsigned BIGINT does not pass the signed type check, and ids stay
    // below 2^63.
    row.try_get_unchecked::<Option<i64>, _>(column)
        .ok()
        .flatten()
        .filter(|n| *n >= 0)
        .map(|n| n.to_string())
}

/// A unique violation is `Conflict`; a database that cannot answer now is `Unavailable`
/// (answered 503 with `Retry-After`); everything else is a backend failure.
pub(crate) fn backend(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ if is_unavailable(&err) => StoreError::unavailable(err),
        _ => StoreError::backend(err),
    }
}

/// Failures that pass when the database comes back or gets less busy: no connection within
/// the acquire timeout, a broken or refused connection, a server shutting down or out of
/// connections (SQLSTATE classes 08 and 57P0x, 53300), SQLite busy or locked past its busy
/// timeout (primary codes 5 and 6, whatever the extended code); on MySQL, too many connections
/// (1040), a server shutting down (1053), a lock wait timeout (1205) or a transaction chosen as a
/// deadlock's victim (1213, after the store's own retries).
pub(crate) fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            #[cfg(feature = "mysql")]
            if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                return matches!(mysql.number(), 1040 | 1053 | 1205 | 1213)
                    || mysql.code().is_some_and(|code| code.starts_with("08"));
            }
            let Some(code) = db.code() else { return false };
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                return code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
            }
            code.starts_with("08") || code.starts_with("57P") || code == "53300" || code == "53400"
        }
        _ => false,
    }
}

/// JSON text of a list column.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

fn from_json<T: serde::de::DeserializeOwned + Default>(text: Option<String>) -> T {
    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

/// The grant type names of a client, for its JSON column.
pub(crate) fn grant_names(grants: &[GrantType]) -> Vec<&'static str> {
    grants.iter().map(|g| g.as_str()).collect()
}

/// The extensions column: NULL when there are none.
pub(crate) fn extensions_json(extensions: &AuthorizationExtensions) -> Option<String> {
    (!extensions.is_empty()).then(|| to_json(extensions))
}

/// Every column: a Laravel Passport 11/12 table has legacy ones (`redirect`, `password_client`,
/// `personal_access_client`, `user_id`) that [`client`] reads when ours are empty.
pub(crate) const CLIENT_COLUMNS: &str = "*";

pub(crate) const ACCESS_COLUMNS: &str =
    "id, user_id, client_id, name, scopes, family_id, revoked, created_at, expires_at";

pub(crate) const REFRESH_COLUMNS: &str = "id, access_token_id, client_id, user_id, scopes, family_id, revoked, rotated_at, rotated_to, created_at, \
     expires_at, auth_time, dpop_jkt";

pub(crate) const AUTH_CODE_COLUMNS: &str = "id, user_id, client_id, scopes, redirect_uri, code_challenge, \
     code_challenge_method, extensions, revoked, created_at, expires_at";

pub(crate) const DEVICE_COLUMNS: &str = "id, user_code, client_id, scopes, user_id, user_approved_at, \
     last_polled_at, \"interval\", revoked, created_at, expires_at";

pub(crate) const SESSION_COLUMNS: &str = "id, user_id, data, created_at, expires_at";

pub(crate) const KEY_COLUMNS: &str = "kid, algorithm, private_key, public_key, created_at, activates_at, retired_at";

pub(crate) fn stored_key(row: &impl Columns) -> Result<passport::StoredKey, sqlx::Error> {
    Ok(passport::StoredKey {
        kid: row.text("kid")?,
        algorithm: row.text("algorithm")?,
        private_key: row.text("private_key")?,
        public_key: row.text("public_key")?,
        created_at: row.time("created_at")?,
        activates_at: row.time("activates_at")?,
        retired_at: row.opt_time("retired_at")?,
    })
}

/// A row of `passport_revocations`; a kind we do not know (a newer release's) is read as the
/// widest, a retired key: everything cached is dropped.
pub(crate) fn revocation(row: &impl Columns) -> Result<passport::RevocationEvent, sqlx::Error> {
    Ok(passport::RevocationEvent {
        seq: row.int64("seq")?,
        kind: passport::RevocationKind::parse(&row.text("kind")?).unwrap_or(passport::RevocationKind::Key),
        subject: row.text("subject")?,
    })
}

pub(crate) const USER_COLUMNS: &str = "id, name, email, password, created_at, updated_at, email_verified_at";

/// A column a table may not have (Laravel's legacy ones, or ours before a migration): `None`
/// when it is missing.
fn optional<T>(read: Result<Option<T>, sqlx::Error>) -> Result<Option<T>, sqlx::Error> {
    match read {
        Err(sqlx::Error::ColumnNotFound(_)) => Ok(None),
        other => other,
    }
}

/// The grants of a client a Laravel Passport 11/12 table describes with flags instead of a
/// `grant_types` list (league 8's rules, §3.2 and §7.1 of `reference/passport-behaviour.md`):
/// a password client has the password grant, a personal access client (confidential) issues
/// personal access tokens, any other client the code (and implicit) grant; every confidential
/// client may use client credentials, and every client refresh tokens.
fn legacy_grants(row: &impl Columns, confidential: bool) -> Result<Vec<GrantType>, sqlx::Error> {
    let flag = |column| optional(row.flag(column).map(Some)).map(Option::unwrap_or_default);
    let password = flag("password_client")?;
    let personal = flag("personal_access_client")?;
    let mut grants = Vec::new();
    if password {
        grants.push(GrantType::Password);
    } else if !personal {
        grants.extend([GrantType::AuthorizationCode, GrantType::Implicit]);
    }
    if personal && confidential {
        grants.push(GrantType::PersonalAccess);
    }
    if confidential {
        grants.push(GrantType::ClientCredentials);
    }
    grants.push(GrantType::RefreshToken);
    Ok(grants)
}

pub(crate) fn client(row: &impl Columns) -> Result<Client, sqlx::Error> {
    // Laravel Passport 11/12 tables keep redirect URIs comma separated in `redirect`, and
    // Passport 13 reads them from there when `redirect_uris` is empty; so do we.
    let redirect_uris: Vec<String> = match optional(row.opt_text("redirect_uris"))? {
        Some(json) => from_json(Some(json)),
        None => optional(row.opt_text("redirect"))?
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    };
    let secret_hash = row.opt_text("secret")?;
    let grant_types = match optional(row.opt_text("grant_types"))? {
        Some(json) => from_json::<Vec<String>>(Some(json))
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect(),
        None => legacy_grants(row, secret_hash.as_deref().is_some_and(|s| !s.is_empty()))?,
    };
    let post_logout: Vec<String> = from_json(optional(row.opt_text("post_logout_redirect_uris"))?);
    let flag = |column| optional(row.flag(column).map(Some)).map(Option::unwrap_or_default);
    let owner_id = match optional(row.opt_text("owner_id"))? {
        Some(owner) => Some(owner),
        None => optional(row.opt_text("user_id"))?,
    };
    Ok(Client {
        id: row.text("id")?.into(),
        owner_id,
        name: row.text("name")?,
        secret_hash,
        provider: row.opt_text("provider")?,
        redirect_uris: redirect_uris.into_iter().map(RedirectUri::from_storage).collect(),
        grant_types,
        scopes: optional(row.opt_text("scopes"))?.and_then(|s| serde_json::from_str::<ScopeSet>(&s).ok()),
        skips_authorization: flag("skips_authorization")?,
        post_logout_redirect_uris: post_logout.into_iter().map(RedirectUri::from_storage).collect(),
        can_introspect: flag("can_introspect")?,
        require_pushed_authorization_requests: flag("require_pushed_authorization_requests")?,
        dpop_bound_access_tokens: flag("dpop_bound_access_tokens")?,
        jwks: optional(row.opt_text("jwks"))?,
        fapi_profile: flag("fapi_profile")?,
        jwks_uri: optional(row.opt_text("jwks_uri"))?,
        revoked: row.flag("revoked")?,
        // Laravel's timestamps are nullable.
        created_at: row.opt_time("created_at")?.unwrap_or(DateTime::<Utc>::MIN_UTC),
        updated_at: row.opt_time("updated_at")?.unwrap_or(DateTime::<Utc>::MIN_UTC),
    })
}

pub(crate) fn access(row: &impl Columns) -> Result<AccessTokenRecord, sqlx::Error> {
    Ok(AccessTokenRecord {
        id: row.text("id")?,
        user_id: row.opt_text("user_id")?,
        client_id: row.text("client_id")?.into(),
        name: row.opt_text("name")?,
        scopes: from_json(row.opt_text("scopes")?),
        family_id: row.opt_text("family_id")?,
        revoked: row.flag("revoked")?,
        created_at: row.opt_time("created_at")?.unwrap_or(DateTime::<Utc>::MIN_UTC),
        expires_at: row.opt_time("expires_at")?.unwrap_or(DateTime::<Utc>::MAX_UTC),
    })
}

/// A row Laravel Passport wrote has only `id`, `access_token_id`, `revoked` and `expires_at`
/// (the rest is in the token's ciphertext): its family is named after it.
pub(crate) fn refresh(row: &impl Columns) -> Result<RefreshTokenRecord, sqlx::Error> {
    let id = row.text("id")?;
    Ok(RefreshTokenRecord {
        access_token_id: row.text("access_token_id")?,
        client_id: row.opt_text("client_id")?.unwrap_or_default().into(),
        user_id: row.opt_text("user_id")?,
        scopes: from_json(row.opt_text("scopes")?),
        family_id: row
            .opt_text("family_id")?
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| format!("laravel:{id}")),
        id,
        revoked: row.flag("revoked")?,
        rotated_at: row.opt_time("rotated_at")?,
        rotated_to: row.opt_text("rotated_to")?,
        auth_time: row.opt_time("auth_time")?,
        dpop_jkt: row.opt_text("dpop_jkt")?,
        created_at: row.opt_time("created_at")?.unwrap_or(DateTime::<Utc>::MIN_UTC),
        expires_at: row.opt_time("expires_at")?.unwrap_or(DateTime::<Utc>::MAX_UTC),
    })
}

/// The guard's row: `revoked, user_id, client_id, client_revoked, provider`.
pub(crate) fn token_status(row: &impl Columns) -> Result<TokenStatus, sqlx::Error> {
    Ok(TokenStatus {
        revoked: row.flag("revoked")?,
        user_id: row.opt_text("user_id")?,
        client_id: row.text("client_id")?.into(),
        client_revoked: row.flag("client_revoked")?,
        client_provider: row.opt_text("provider")?,
    })
}

pub(crate) fn auth_code(row: &impl Columns) -> Result<AuthCodeRecord, sqlx::Error> {
    Ok(AuthCodeRecord {
        id: row.text("id")?,
        user_id: row.text("user_id")?,
        client_id: row.text("client_id")?.into(),
        scopes: from_json(row.opt_text("scopes")?),
        redirect_uri: row.opt_text("redirect_uri")?,
        code_challenge: row.opt_text("code_challenge")?,
        // An unknown stored method fails the row rather than read as `plain` (a downgrade).
        code_challenge_method: row
            .opt_text("code_challenge_method")?
            .map(|m| {
                m.parse::<PkceMethod>()
                    .map_err(|()| sqlx::Error::Decode(format!("unknown code_challenge_method {m:?}").into()))
            })
            .transpose()?,
        extensions: from_json(row.opt_text("extensions")?),
        revoked: row.flag("revoked")?,
        created_at: row.opt_time("created_at")?.unwrap_or(DateTime::<Utc>::MIN_UTC),
        expires_at: row.opt_time("expires_at")?.unwrap_or(DateTime::<Utc>::MIN_UTC),
    })
}

pub(crate) fn device(row: &impl Columns) -> Result<DeviceCodeRecord, sqlx::Error> {
    Ok(DeviceCodeRecord {
        id: row.text("id")?,
        user_code: row.text("user_code")?,
        client_id: row.text("client_id")?.into(),
        scopes: from_json(row.opt_text("scopes")?),
        user_id: row.opt_text("user_id")?,
        user_approved_at: row.opt_time("user_approved_at")?,
        last_polled_at: row.opt_time("last_polled_at")?,
        interval: i64::from(row.int32("interval")?),
        revoked: row.flag("revoked")?,
        created_at: row.time("created_at")?,
        expires_at: row.opt_time("expires_at")?.unwrap_or(DateTime::<Utc>::MIN_UTC),
    })
}

pub(crate) fn session(row: &impl Columns) -> Result<SessionRecord, sqlx::Error> {
    Ok(SessionRecord {
        id: row.text("id")?,
        user_id: row.opt_text("user_id")?,
        data: from_json(row.opt_text("data")?),
        created_at: row.time("created_at")?,
        expires_at: row.time("expires_at")?,
    })
}

pub(crate) fn user(row: &impl Columns) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: row.int64("id")?.to_string(),
        name: row.text("name")?,
        email: row.text("email")?,
        password_hash: row.text("password")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        email_verified_at: row.opt_time("email_verified_at")?,
    })
}

/// The `scopes` column alone (a JSON list).
pub(crate) fn scopes(row: &impl Columns) -> Result<Vec<String>, sqlx::Error> {
    Ok(from_json(row.opt_text("scopes")?))
}

/// The `payload` column of a consent request.
pub(crate) fn payload(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_default()
}

/// The `id` column of each row (revocations' `RETURNING id`).
pub(crate) fn ids(rows: &[impl Columns]) -> Result<Vec<String>, StoreError> {
    rows.iter()
        .map(|row| row.text("id"))
        .collect::<Result<_, _>>()
        .map_err(backend)
}
