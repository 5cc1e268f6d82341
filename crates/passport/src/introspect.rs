//! Token introspection (RFC 7662) and revocation (RFC 7009): what a resource server may learn
//! about a token, and how a client ends one. Both authenticate the caller exactly as the token
//! endpoint does (failure limits per client and address included) and look the presented token
//! up as both kinds, the hinted one first: a hint only orders the search (RFC 7662 §2.1, RFC
//! 7009 §2.1), so a wrong or unknown hint never hides a token.
//!
//! Access tokens are checked as the guard checks them (signature and time claims, then the
//! token row and its client); refresh tokens by the SHA-256 of their value. Introspecting a
//! refresh token only reads it: it stays usable.

use serde::Serialize;

use crate::client::ClientId;
use crate::error::OAuthError;
use crate::events::Event;
use crate::grants::TokenRequest;
use crate::jwt::{self, AccessTokenClaims};
use crate::passport::Passport;
use crate::secret::sha256_hex;
use crate::store::{RefreshTokenRecord, Revoked, TokenStatus};

/// The two kinds of token the endpoints know, by their RFC 7009 §4.1.2 hint names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A JWT access token.
    AccessToken,
    /// An opaque refresh token.
    RefreshToken,
}

impl TokenKind {
    /// The search order for a `token_type_hint`: the hinted kind first. Any other value is
    /// ignored (RFC 7009 §2.1: the server "MAY ignore this parameter").
    fn search_order(hint: Option<&str>) -> [Self; 2] {
        match hint {
            Some("refresh_token") => [Self::RefreshToken, Self::AccessToken],
            _ => [Self::AccessToken, Self::RefreshToken],
        }
    }
}

/// An introspection answer (RFC 7662 §2.2): `{"active": false}` alone, or `active: true` with
/// what the caller may know about the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Introspection {
    /// Whether the token is live and the caller may see it.
    pub active: bool,
    /// The token's details, when active.
    #[serde(flatten)]
    pub token: Option<ActiveToken>,
}

impl Introspection {
    /// `{"active": false}`: unknown, expired, revoked, of a revoked client, or not the caller's
    /// to see (RFC 7662 §2.2, §4).
    pub fn inactive() -> Self {
        Self {
            active: false,
            token: None,
        }
    }

    fn active(token: ActiveToken) -> Self {
        Self {
            active: true,
            token: Some(token),
        }
    }
}

/// The members of an active token's introspection (RFC 7662 §2.2). No `username`: users are
/// named by `sub` only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveToken {
    /// Granted scopes, space-separated; omitted when there are none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// The client the token was issued to.
    pub client_id: ClientId,
    /// The user; for tokens without one (client credentials) the client id, as the access
    /// token's `sub` claim says (RFC 9068 §2.2).
    pub sub: String,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issue time (Unix seconds).
    pub iat: i64,
    /// Not before (Unix seconds).
    pub nbf: i64,
    /// The audience: the client id, as in the access token's `aud`.
    pub aud: String,
    /// The configured issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The token id: an access token's `jti`, a refresh token's row id (the SHA-256 of its
    /// value, never the value).
    pub jti: String,
    /// `Bearer` for access tokens (RFC 7662 §2.2: "as defined in Section 5.1 of OAuth 2.0").
    /// Omitted for refresh tokens: RFC 6749 §7.1 token types are those of access tokens, and a
    /// refresh token has none; node oidc-provider omits it for them too (`token_type:
    /// token.kind !== 'RefreshToken' ? token.tokenType : undefined`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// The key a DPoP-bound access token is bound to (RFC 9449 §6.2: `cnf.jkt`), so that a
    /// resource server can check proofs itself; `token_type` is then `DPoP`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<crate::dpop::Confirmation>,
    /// Which kind of token it is (not part of the answer).
    #[serde(skip)]
    pub kind: TokenKind,
}

/// A presented token, identified: its signature checked (access tokens) or its row found by
/// hash (refresh tokens). It may still be revoked or expired.
enum Presented {
    Access {
        claims: AccessTokenClaims,
        status: TokenStatus,
    },
    Refresh(RefreshTokenRecord),
}

impl Presented {
    /// The client the token was issued to.
    fn client_id(&self) -> &ClientId {
        match self {
            Self::Access { status, .. } => &status.client_id,
            Self::Refresh(record) => &record.client_id,
        }
    }
}

impl Passport {
    /// Introspects the request's `token` (RFC 7662 §2) for the authenticated caller, which must
    /// be confidential. A token is active only when it is live (not expired, not revoked, its
    /// client not revoked) and the caller is its client or a resource server
    /// ([`crate::Client::can_introspect`]); anything else is [`Introspection::inactive`] (§4).
    /// Errors: those of [`Passport::authenticate_client`], `invalid_client` for a public
    /// caller, `invalid_request` without `token`, `server_error` when storage fails.
    pub async fn introspect(&self, request: &TokenRequest) -> Result<Introspection, OAuthError> {
        let caller = self
            .authenticate_client(&request.client_credentials()?, request.peer())
            .await?;
        // §2.1: the endpoint "MUST also require some form of authorization"; a public client
        // proves nothing, so it is refused as at the client credentials grant.
        if !caller.is_confidential() {
            return Err(OAuthError::invalid_client());
        }
        let token = request.required("token")?;
        let Some(presented) = self.identify(token, request.param("token_type_hint")).await? else {
            return Ok(Introspection::inactive());
        };
        if *presented.client_id() != caller.id && !caller.can_introspect {
            return Ok(Introspection::inactive());
        }
        Ok(match self.describe_live(presented).await? {
            Some(token) => Introspection::active(token),
            None => Introspection::inactive(),
        })
    }

    /// Revokes the request's `token` (RFC 7009 §2) for the authenticated caller (a public client
    /// by its `client_id` alone, a confidential one with its secret). Revoking a refresh token
    /// revokes its whole family, every access and refresh token descending from the same grant
    /// (§2.1: the server "SHOULD also invalidate all access tokens based on the same
    /// authorization grant"). Revoking an access token also revokes the refresh token issued
    /// with it (§2.1 "MAY"): it could only mint a replacement for the token just revoked, which
    /// is rarely what a client ending a token means, and Passport's `$token->revoke()` (ours,
    /// [`Passport::revoke_token`]) does the same. Unknown, invalid, expired or already revoked
    /// tokens revoke nothing and are no error (§2.2). Each revoked access token is an
    /// `AccessTokenRevoked` event.
    ///
    /// Errors: those of [`Passport::authenticate_client`], `invalid_request` without `token`,
    /// `unauthorized_client` for a token of another client (nothing is revoked; §2.1: "the
    /// authorization server first validates the client credentials ... and then verifies
    /// whether the token was issued to the client making the revocation request", refused as
    /// Keycloak and fosite do), `server_error` when storage fails. `unsupported_token_type`
    /// (§2.2.1) is never returned: both kinds of token can be revoked.
    pub async fn revoke(&self, request: &TokenRequest) -> Result<Revoked, OAuthError> {
        let caller = self
            .authenticate_client(&request.client_credentials()?, request.peer())
            .await?;
        let token = request.required("token")?;
        let Some(presented) = self.identify(token, request.param("token_type_hint")).await? else {
            return Ok(Revoked::default());
        };
        if *presented.client_id() != caller.id {
            return Err(foreign_token());
        }
        let access_tokens = match presented {
            Presented::Access { claims, .. } => {
                if self.revoke_token(&claims.jti).await? {
                    vec![claims.jti]
                } else {
                    Vec::new()
                }
            }
            // Used (rotated) or revoked already: nothing of it is live to end, and the family's
            // newer tokens are the client's own business (reuse detection at the token
            // endpoint covers a stolen one).
            Presented::Refresh(record) if record.revoked => Vec::new(),
            Presented::Refresh(record) => {
                let revoked = self.revoke_family(&record.family_id).await?;
                for token_id in &revoked {
                    self.emit(Event::AccessTokenRevoked {
                        token_id: token_id.clone(),
                    });
                }
                revoked
            }
        };
        tracing::info!(
            client_id = caller.id.as_str(),
            revoked = access_tokens.len(),
            "token revoked at the revocation endpoint"
        );
        Ok(Revoked {
            access_tokens,
            clients: Vec::new(),
        })
    }

    /// Finds `token` as either kind, the hinted one first.
    async fn identify(&self, token: &str, hint: Option<&str>) -> Result<Option<Presented>, OAuthError> {
        for kind in TokenKind::search_order(hint) {
            let found = match kind {
                TokenKind::AccessToken => self.identify_access_token(token).await?,
                TokenKind::RefreshToken => self
                    .store()
                    .find_refresh_token(&sha256_hex(token))
                    .await?
                    .map(Presented::Refresh),
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// An access token whose signature and time claims verify and whose row exists for the
    /// client its `aud` names (as [`Passport::authenticate_bearer`] checks it).
    async fn identify_access_token(&self, token: &str) -> Result<Option<Presented>, OAuthError> {
        let Ok(claims) = jwt::verify(&self.keys(), token, self.now()) else {
            return Ok(None);
        };
        Ok(match self.store().token_status(&claims.jti).await? {
            Some(status) if status.client_id == claims.aud => Some(Presented::Access { claims, status }),
            _ => None,
        })
    }

    /// The introspection of a token, when it is live.
    async fn describe_live(&self, presented: Presented) -> Result<Option<ActiveToken>, OAuthError> {
        let issuer = self.settings().issuer.clone();
        Ok(match presented {
            Presented::Access { status, .. } if status.revoked || status.client_revoked => None,
            Presented::Access { claims, status } => Some(ActiveToken {
                scope: claims.scopes.join(" "),
                sub: status.user_id.unwrap_or_else(|| status.client_id.to_string()),
                client_id: status.client_id,
                exp: claims.exp,
                iat: claims.iat,
                nbf: claims.nbf,
                aud: claims.aud,
                iss: issuer,
                jti: claims.jti,
                token_type: Some(if claims.cnf.is_some() { "DPoP" } else { "Bearer" }),
                cnf: claims.cnf,
                kind: TokenKind::AccessToken,
            }),
            Presented::Refresh(record) if record.revoked || record.expires_at <= self.now() => None,
            Presented::Refresh(record) => {
                let client = self.find_active_client(record.client_id.as_str()).await?;
                client.map(|_| ActiveToken {
                    scope: record.scopes.to_param(),
                    sub: record.user_id.unwrap_or_else(|| record.client_id.to_string()),
                    aud: record.client_id.to_string(),
                    client_id: record.client_id,
                    exp: record.expires_at.timestamp(),
                    iat: record.created_at.timestamp(),
                    nbf: record.created_at.timestamp(),
                    iss: issuer,
                    jti: record.id,
                    token_type: None,
                    cnf: None,
                    kind: TokenKind::RefreshToken,
                })
            }
        })
    }
}

/// `unauthorized_client` for a revocation of another client's token (RFC 7009 §2.1).
fn foreign_token() -> OAuthError {
    OAuthError::unauthorized_client()
        .with_description("The authenticated client is not authorized to revoke this token.")
        .with_hint("The token was issued to another client")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_orders_the_search_and_an_unknown_one_is_ignored() {
        use TokenKind::{AccessToken, RefreshToken};
        assert_eq!(TokenKind::search_order(None), [AccessToken, RefreshToken]);
        assert_eq!(
            TokenKind::search_order(Some("access_token")),
            [AccessToken, RefreshToken]
        );
        assert_eq!(
            TokenKind::search_order(Some("refresh_token")),
            [RefreshToken, AccessToken]
        );
        assert_eq!(TokenKind::search_order(Some("id_token")), [AccessToken, RefreshToken]);
    }

    #[test]
    fn answers_serialize_as_rfc_7662_says() {
        let inactive = serde_json::to_value(Introspection::inactive()).unwrap();
        assert_eq!(inactive, serde_json::json!({"active": false}));
        let active = Introspection::active(ActiveToken {
            scope: String::new(),
            client_id: ClientId::new("c"),
            sub: "c".into(),
            exp: 3,
            iat: 1,
            nbf: 1,
            aud: "c".into(),
            iss: None,
            jti: "j".into(),
            token_type: None,
            cnf: None,
            kind: TokenKind::RefreshToken,
        });
        assert_eq!(
            serde_json::to_value(active).unwrap(),
            serde_json::json!({"active": true, "client_id": "c", "sub": "c", "exp": 3, "iat": 1, "nbf": 1, "aud": "c", "jti": "j"}),
            "empty scope, no issuer and no token type are omitted; the kind is not sent"
        );
    }
}
