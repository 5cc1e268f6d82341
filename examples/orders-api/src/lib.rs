//! An orders API that existed before it had OAuth: its own `customers` and `orders` tables
//! under its own sqlx migrations, one SQLite pool. Adding passport to it takes
//!
//! * the same pool for passport's tables ([`passport_sqlx::Database::from_pool`]) and only the
//!   core's migrations (no users or sessions tables: customers are the users);
//! * the `customers` table as the user provider ([`Customers`]);
//! * a custom claim (`tier`) in every customer's access token ([`TierClaim`]);
//! * two scopes on one path (`GET` and `POST /orders`), one `.route` call each;
//! * rejections in the application's own error format ([`passport_axum::RenderRejections`]);
//! * serving through [`passport_axum::serve`], so rate limits see each caller's address.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use passport::{
    ClaimsHook, GrantType, Passport, PassportBuilder, PasswordHasher, StoreError, TokenContext, User, UserProvider,
    async_trait,
};
use passport_axum::{AuthUser, CheckToken, GuardRejection, RenderRejections};
use passport_sqlx::Database;
use serde_json::{Map, Value, json};
use sqlx::{Row as _, SqlitePool};

/// The application's own migrations.
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The scopes of this API.
pub const SCOPES: [(&str, &str); 2] = [("orders:read", "See your orders"), ("orders:create", "Place orders")];

/// Customers, as passport's users: email and password for the password grant, id for tokens.
#[derive(Debug, Clone)]
pub struct Customers {
    pool: SqlitePool,
    hasher: PasswordHasher,
}

impl Customers {
    /// The customers in `pool`.
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            hasher: PasswordHasher::default(),
        }
    }

    /// Adds a customer; returns the id.
    pub async fn add(&self, email: &str, name: &str, password: &str, tier: &str) -> anyhow::Result<String> {
        let hash = self.hasher.hash(password).await?;
        let row = sqlx::query(
            "INSERT INTO customers (email, name, password_hash, tier) VALUES (?1, ?2, ?3, ?4) RETURNING id",
        )
        .bind(email)
        .bind(name)
        .bind(hash)
        .bind(tier)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("id")?.to_string())
    }

    async fn find(&self, column: &str, value: &str) -> Result<Option<(User, String)>, StoreError> {
        let sql = format!("SELECT id, email, name, password_hash, tier FROM customers WHERE {column} = ?1");
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        row.map(|row| -> Result<(User, String), sqlx::Error> {
            let mut extra = Map::new();
            extra.insert("tier".to_owned(), Value::from(row.try_get::<String, _>("tier")?));
            let user = User {
                id: row.try_get::<i64, _>("id")?.to_string(),
                name: row.try_get("name")?,
                email: row.try_get("email")?,
                extra,
            };
            Ok((user, row.try_get("password_hash")?))
        })
        .transpose()
        .map_err(StoreError::backend)
    }
}

#[async_trait]
impl UserProvider for Customers {
    async fn find_for_passport(&self, username: &str) -> Result<Option<User>, StoreError> {
        Ok(self.find("email", username).await?.map(|(user, _)| user))
    }

    async fn validate_for_passport_password_grant(&self, user: &User, password: &str) -> Result<bool, StoreError> {
        let Some((_, hash)) = self.find("id", &user.id).await? else {
            return Ok(false);
        };
        Ok(self.hasher.verify(&hash, password).await)
    }

    async fn retrieve_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        Ok(self.find("id", id).await?.map(|(user, _)| user))
    }
}

/// Puts the customer's tier in their access tokens (`"tier": "gold"`).
#[derive(Debug, Clone)]
pub struct TierClaim(pub Customers);

#[async_trait]
impl ClaimsHook for TierClaim {
    async fn access_token_claims(&self, token: TokenContext<'_>) -> Result<Map<String, Value>, StoreError> {
        let mut claims = Map::new();
        if let (Some(id), GrantType::Password | GrantType::RefreshToken) = (token.user_id, token.grant)
            && let Some(customer) = self.0.retrieve_by_id(id).await?
        {
            claims.insert("tier".to_owned(), customer.extra["tier"].clone());
        }
        Ok(claims)
    }
}

/// The application's state: passport for the guards, the pool for its own queries.
#[derive(Debug, Clone, FromRef)]
pub struct AppState {
    /// The authorization server.
    pub passport: Passport,
    /// The application's pool (shared with passport).
    pub pool: SqlitePool,
}

/// `GET /orders`: the customer's orders.
async fn list_orders(State(pool): State<SqlitePool>, customer: AuthUser) -> Result<Json<Value>, AppError> {
    let rows = sqlx::query("SELECT id, item FROM orders WHERE customer_id = ?1 ORDER BY id")
        .bind(&customer.user.id)
        .fetch_all(&pool)
        .await?;
    let orders: Vec<Value> = rows
        .iter()
        .map(|row| Ok(json!({"id": row.try_get::<i64, _>("id")?, "item": row.try_get::<String, _>("item")?})))
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Json(
        json!({"orders": orders, "tier": customer.token.token.custom_claims.get("tier")}),
    ))
}

/// `POST /orders` (`{"item": …}`): places an order.
async fn create_order(
    State(pool): State<SqlitePool>,
    customer: AuthUser,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let item = body["item"].as_str().unwrap_or("something").to_owned();
    let row = sqlx::query("INSERT INTO orders (customer_id, item) VALUES (?1, ?2) RETURNING id")
        .bind(&customer.user.id)
        .bind(&item)
        .fetch_one(&pool)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": row.try_get::<i64, _>("id")?, "item": item})),
    ))
}

/// The application's error format: `{"status": "error", "code": …}`.
fn error_body(code: &str) -> Response {
    Json(json!({"status": "error", "code": code})).into_response()
}

/// A database failure in a handler.
#[derive(Debug)]
pub struct AppError(sqlx::Error);

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        Self(err)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        eprintln!("orders: database error: {}", self.0);
        (StatusCode::INTERNAL_SERVER_ERROR, error_body("server_error")).into_response()
    }
}

/// The application's routes, guarded, plus `POST /oauth/token`. Two scopes on one path take
/// two `.route` calls: a method router's `.layer` wraps every method added before it.
pub fn app(state: AppState) -> Router {
    let passport = state.passport.clone();
    Router::new()
        .route(
            "/orders",
            get(list_orders).layer(CheckToken::all(&passport, ["orders:read"])),
        )
        .route(
            "/orders",
            post(create_order).layer(CheckToken::all(&passport, ["orders:create"])),
        )
        .with_state(state)
        // Rejections in our format; the status and WWW-Authenticate stay RFC 6750's.
        .layer(RenderRejections::new(|rejection: &GuardRejection| {
            error_body(match rejection {
                GuardRejection::Missing | GuardRejection::Invalid | GuardRejection::Dpop(_) => "unauthenticated",
                GuardRejection::InsufficientScope(_) => "forbidden",
                _ => "unavailable",
            })
        }))
        // `token_routes` has its state already: merge it after `with_state`.
        .merge(passport_axum::token_routes(&passport))
}

/// Runs the application's migrations and passport's core migrations (either order works) on
/// `pool`, and builds passport on the same pool with the customers as users and the tier claim.
/// `configure` sets keys and anything else.
pub async fn passport(
    pool: &SqlitePool,
    configure: impl FnOnce(PassportBuilder) -> PassportBuilder,
) -> anyhow::Result<Passport> {
    MIGRATIONS.run(pool).await?;
    let db = Database::from_pool(pool.clone()).await?;
    db.migrate().await?;
    let customers = Customers::new(pool.clone());
    let builder = Passport::builder()
        .tokens_can(SCOPES)
        .enable_password_grant(true)
        .server_secret(db.server_secret().await?)
        .store(db.store())
        .user_provider("customers", Arc::new(customers.clone()))
        .custom_claims(Arc::new(TierClaim(customers)));
    Ok(configure(builder).build()?)
}

/// The README's Rust snippets, compiled as doc tests of this crate (it depends on everything
/// they use), so the README cannot drift from the API.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeSnippets;
