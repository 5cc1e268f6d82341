//! Custom claims (the request Passport users make most): a hook that adds claims to access
//! tokens when they are issued, told the grant, the client, the user and the scopes, and (for
//! OpenID Connect) claims about the user to id_tokens and userinfo answers. Names the
//! protocol uses or will use are refused, so a hook can never change what a token means to
//! the server (`sub`, `aud`, `scopes`…) or to OpenID Connect (`nonce`, `azp`…).

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::client::{Client, GrantType};
use crate::error::{OAuthError, StoreError};
use crate::scope::ScopeSet;
use crate::user::User;

/// Claim names a hook may not set: Passport's access token claims, and those of RFC 9068,
/// RFC 9449 (`cnf`) and OpenID Connect.
pub const RESERVED_CLAIMS: &[&str] = &[
    "aud",
    "jti",
    "iat",
    "nbf",
    "exp",
    "sub",
    "scopes",
    "scope",
    "iss",
    "client_id",
    "cnf",
    "nonce",
    "at_hash",
    "auth_time",
    "azp",
    "sid",
    "acr",
    "amr",
];

/// What a token is being issued for.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TokenContext<'a> {
    /// The grant issuing it (`PersonalAccess` for personal access tokens, `Implicit` for the
    /// implicit grant).
    pub grant: GrantType,
    /// The client it is issued to.
    pub client: &'a Client,
    /// The user, or `None` for client credentials.
    pub user_id: Option<&'a str>,
    /// The granted scopes.
    pub scopes: &'a ScopeSet,
}

/// Where OpenID Connect claims about a user are going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimsTarget {
    /// An id_token (token endpoint, or the implicit grant's redirect).
    IdToken,
    /// A `GET`/`POST /oauth/userinfo` answer.
    Userinfo,
}

/// What a user's OpenID Connect claims are being gathered for.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct UserClaimsContext<'a> {
    /// An id_token or a userinfo answer.
    pub target: ClaimsTarget,
    /// The client that will read them.
    pub client: &'a Client,
    /// The user (from the client's user provider).
    pub user: &'a User,
    /// The scopes granted (`openid` among them; the standard claims of `profile` and `email`
    /// are already released per scope).
    pub scopes: &'a ScopeSet,
}

/// Adds claims to access tokens at issue time. Registered with
/// [`crate::PassportBuilder::custom_claims`]; called once per token issued.
///
/// ```
/// use passport::{TokenContext, ClaimsHook, StoreError, async_trait};
/// use serde_json::{Map, Value};
///
/// #[derive(Debug)]
/// struct Tier;
///
/// #[async_trait]
/// impl ClaimsHook for Tier {
///     async fn access_token_claims(&self, token: TokenContext<'_>) -> Result<Map<String, Value>, StoreError> {
///         let mut claims = Map::new();
///         if token.user_id.is_some() {
///             claims.insert("tier".into(), Value::from("gold"));
///         }
///         Ok(claims)
///     }
/// }
/// ```
#[async_trait]
pub trait ClaimsHook: Send + Sync + std::fmt::Debug {
    /// The claims to add. A reserved name ([`RESERVED_CLAIMS`]) fails the issue with
    /// `server_error` (and a log line naming it); a failure of the hook itself too.
    async fn access_token_claims(&self, token: TokenContext<'_>) -> Result<Map<String, Value>, StoreError>;

    /// Claims to add to id_tokens and userinfo answers about `user.user` (OpenID Connect),
    /// beside those of the user provider ([`crate::UserProvider::openid_claims`]); they may
    /// replace those, never a reserved name ([`RESERVED_CLAIMS`]: `server_error`). None by
    /// default.
    async fn user_claims(&self, user: UserClaimsContext<'_>) -> Result<Map<String, Value>, StoreError> {
        let _ = user;
        Ok(Map::new())
    }
}

/// Runs the hook and refuses reserved names.
pub(crate) async fn custom_claims(
    hook: &dyn ClaimsHook,
    token: TokenContext<'_>,
) -> Result<Map<String, Value>, OAuthError> {
    let claims = hook.access_token_claims(token).await?;
    if let Some(name) = claims.keys().find(|name| RESERVED_CLAIMS.contains(&name.as_str())) {
        return Err(OAuthError::server_error(&format!(
            "the custom claims hook set the reserved claim `{name}`"
        )));
    }
    Ok(claims)
}
