//! OpenID Connect (Core 1.0; RP-Initiated Logout 1.0) on top of the OAuth core: id_tokens
//! (Core §2, §3.1.3.6, §12.2), the claims of the granted scopes (§5.4) from the user provider
//! and the claims hook, the userinfo answer (§5.3), `id_token_hint` checks (§3.1.2.1) and the
//! validation of a logout request.
//!
//! An id_token is a JWT signed with the current key ([`Passport::sign_jwt`]): `iss` (the
//! configured issuer: no issuer, no OpenID Connect), `sub` (the user id), `aud` (the client id,
//! the only audience, so no `azp` is needed), `exp`, `iat`, `auth_time`, `nonce` when the
//! request had one, `at_hash` when an access token comes with it, then the user's claims.

use chrono::TimeDelta;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::authorize::redirect_with;
use crate::claims::{ClaimsTarget, RESERVED_CLAIMS, UserClaimsContext};
use crate::client::Client;
use crate::error::{ErrorCode, OAuthError};
use crate::passport::{AccessToken, Passport};
use crate::scope::ScopeSet;
use crate::user::UserClaims;

/// The scope that makes a request an OpenID Connect authentication request.
pub(crate) const OPENID: &str = "openid";

/// How long an id_token is valid (at most; never longer than an access token).
pub const ID_TOKEN_TTL: TimeDelta = TimeDelta::hours(1);

/// Claims OpenID Connect defines for id_tokens besides [`RESERVED_CLAIMS`]: nobody else may
/// set them either.
const ID_TOKEN_CLAIMS: [&str; 2] = ["c_hash", "s_hash"];

/// The scope that releases a standard claim (Core §5.4); other claims go with `openid`.
fn scope_of(claim: &str) -> &'static str {
    match claim {
        "name" | "family_name" | "given_name" | "middle_name" | "nickname" | "preferred_username" | "profile"
        | "picture" | "website" | "gender" | "birthdate" | "zoneinfo" | "locale" | "updated_at" => "profile",
        "email" | "email_verified" => "email",
        "address" => "address",
        "phone_number" | "phone_number_verified" => "phone",
        _ => OPENID,
    }
}

fn refuse_reserved(claims: &Map<String, Value>, source: &str) -> Result<(), OAuthError> {
    let reserved = |name: &str| RESERVED_CLAIMS.contains(&name) || ID_TOKEN_CLAIMS.contains(&name);
    match claims.keys().find(|name| reserved(name)) {
        Some(name) => Err(OAuthError::server_error(&format!(
            "{source} set the reserved claim `{name}`"
        ))),
        None => Ok(()),
    }
}

/// What to put in an id_token.
pub(crate) struct IdTokenSpec<'a> {
    pub(crate) client: &'a Client,
    pub(crate) user_id: &'a str,
    /// The granted scopes (their claims are released).
    pub(crate) scopes: &'a ScopeSet,
    /// When the user authenticated (Unix seconds).
    pub(crate) auth_time: i64,
    pub(crate) nonce: Option<&'a str>,
    /// The access token issued with it, for `at_hash`.
    pub(crate) access_token: Option<&'a str>,
    /// Add the claims of the granted scopes (Core §5.4 puts them in the id_token when no access
    /// token is issued; we add them to every id_token).
    pub(crate) with_user_claims: bool,
}

/// A valid `id_token_hint`: one of our id_tokens (expired ones too: a hint is not a credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    /// The user it names (`sub`).
    pub subject: String,
    /// The client it was issued to (`aud`).
    pub client_id: String,
}

/// Why the userinfo endpoint refuses a token (RFC 6750 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserinfoRefusal {
    /// The token does not stand for a user (client credentials), or the user is gone:
    /// `invalid_token`.
    NoUser,
    /// The token was not granted `openid`: `insufficient_scope`.
    NoOpenidScope,
    /// The claims could not be gathered (`server_error`; logged).
    Failed(OAuthError),
}

impl From<OAuthError> for UserinfoRefusal {
    fn from(err: OAuthError) -> Self {
        Self::Failed(err)
    }
}

impl Passport {
    /// The issuer for OpenID Connect answers; `server_error` when none is configured (`serve`
    /// always derives one; a library user must set [`crate::PassportBuilder::issuer`]).
    pub(crate) fn openid_issuer(&self) -> Result<&str, OAuthError> {
        self.settings()
            .issuer
            .as_deref()
            .ok_or_else(|| OAuthError::server_error("OpenID Connect needs an issuer: set `issuer`"))
    }

    /// Builds and signs an id_token (Core §2). The user must still exist (`invalid_grant`).
    pub(crate) async fn issue_id_token(&self, spec: IdTokenSpec<'_>) -> Result<String, OAuthError> {
        let issuer = self.openid_issuer()?.to_owned();
        let now = self.now();
        let ttl = ID_TOKEN_TTL.min(self.settings().tokens_expire_in);
        let mut claims = Map::new();
        claims.insert("iss".into(), Value::from(issuer));
        claims.insert("sub".into(), Value::from(spec.user_id));
        claims.insert("aud".into(), Value::from(spec.client.id.as_str()));
        claims.insert("exp".into(), Value::from((now + ttl).timestamp()));
        claims.insert("iat".into(), Value::from(now.timestamp()));
        claims.insert("auth_time".into(), Value::from(spec.auth_time));
        if let Some(nonce) = spec.nonce {
            claims.insert("nonce".into(), Value::from(nonce));
        }
        if let Some(access_token) = spec.access_token {
            // §3.1.3.6 / §3.2.2.9: the left half of the hash of the token, with the hash of the
            // id_token's own `alg`.
            let at_hash = self.signing_algorithm().half_hash(access_token);
            claims.insert("at_hash".into(), Value::from(at_hash));
        }
        if spec.with_user_claims {
            let user = self
                .openid_user_claims(ClaimsTarget::IdToken, spec.client, spec.user_id, spec.scopes)
                .await?
                .ok_or_else(|| OAuthError::invalid_grant("The user no longer exists"))?;
            claims.extend(user);
        }
        self.sign_jwt(&claims).await
    }

    /// The claims of the granted scopes about `user_id`, from the client's user provider
    /// ([`crate::UserProvider::openid_claims`]) and then the claims hook
    /// ([`crate::ClaimsHook::user_claims`]). `None` when the user does not exist.
    pub(crate) async fn openid_user_claims(
        &self,
        target: ClaimsTarget,
        client: &Client,
        user_id: &str,
        scopes: &ScopeSet,
    ) -> Result<Option<Map<String, Value>>, OAuthError> {
        let provider = self
            .user_provider(client.provider.as_deref())
            .ok_or_else(|| OAuthError::server_error("the client's user provider is not registered"))?;
        let Some(user) = provider.retrieve_by_id(user_id).await? else {
            return Ok(None);
        };
        let provided = provider.openid_claims(&user).await?;
        let mut claims = standard_claims(provided);
        refuse_reserved(&claims, "the user provider")?;
        claims.retain(|name, _| scopes.contains(scope_of(name)));
        if let Some(hook) = self.claims_hook() {
            let context = UserClaimsContext {
                target,
                client,
                user: &user,
                scopes,
            };
            let added = hook.user_claims(context).await?;
            refuse_reserved(&added, "the custom claims hook")?;
            claims.extend(added);
        }
        Ok(Some(claims))
    }

    /// Checks an `id_token_hint` (Core §3.1.2.1; RP-Initiated Logout §2): signed by one of our
    /// keys, issued by us (`iss`), an id_token (not an access token), with a `sub` and one
    /// `aud`. Its expiry does not matter. Errors: `invalid_request`.
    pub async fn verify_id_token_hint(&self, hint: &str) -> Result<IdTokenHint, OAuthError> {
        #[derive(Deserialize)]
        struct Claims {
            iss: String,
            sub: String,
            aud: Audience,
            #[serde(default)]
            scopes: Option<Value>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Audience {
            One(String),
            Many(Vec<String>),
        }
        let invalid = || OAuthError::invalid_request("The id_token_hint is not an ID token issued by this server");
        let issuer = self.openid_issuer()?;
        let header = jsonwebtoken::decode_header(hint).map_err(|_| invalid())?;
        let keys = self.keys();
        let key = keys.verifier_for(&header).ok_or_else(invalid)?;
        let claims: Claims = key.decode(hint).map_err(|_| invalid())?;
        let client_id = match claims.aud {
            Audience::One(aud) => aud,
            Audience::Many(mut auds) if auds.len() == 1 => auds.remove(0),
            Audience::Many(_) => return Err(invalid()),
        };
        if claims.iss != issuer || claims.scopes.is_some() || claims.sub.is_empty() {
            return Err(invalid());
        }
        Ok(IdTokenHint {
            subject: claims.sub,
            client_id,
        })
    }

    /// The userinfo answer for a validated bearer token (Core §5.3.2): `sub` and the claims of
    /// the scopes it was granted. The token must stand for a user and hold `openid` itself (a
    /// `*` token from the password grant or a personal access token is not an OpenID Connect
    /// grant).
    pub async fn userinfo(&self, token: &AccessToken) -> Result<Map<String, Value>, UserinfoRefusal> {
        // Client credentials: never a user (RFC 6750 §3.1 invalid_token: "invalid for other
        // reasons"; no scope would make it one).
        let user_id = token.user_id.as_deref().ok_or(UserinfoRefusal::NoUser)?;
        if !token.scopes.contains(OPENID) {
            return Err(UserinfoRefusal::NoOpenidScope);
        }
        let client = self
            .find_active_client(token.client_id.as_str())
            .await?
            .ok_or(UserinfoRefusal::NoUser)?;
        let claims = self
            .openid_user_claims(ClaimsTarget::Userinfo, &client, user_id, &token.scopes)
            .await?
            .ok_or(UserinfoRefusal::NoUser)?;
        let mut answer = Map::new();
        answer.insert("sub".into(), Value::from(user_id));
        answer.extend(claims);
        Ok(answer)
    }
}

/// The provider's claims as JSON members, absent ones left out.
fn standard_claims(provided: UserClaims) -> Map<String, Value> {
    let mut claims = Map::new();
    if let Some(name) = provided.name {
        claims.insert("name".into(), Value::from(name));
    }
    if let Some(email) = provided.email {
        claims.insert("email".into(), Value::from(email));
    }
    if let Some(verified) = provided.email_verified {
        claims.insert("email_verified".into(), Value::from(verified));
    }
    if let Some(updated_at) = provided.updated_at {
        claims.insert("updated_at".into(), Value::from(updated_at.timestamp()));
    }
    for (name, value) in provided.other {
        claims.entry(name).or_insert(value);
    }
    claims
}

/// The parameters of an RP-initiated logout request (RP-Initiated Logout 1.0 §2), from the
/// query of a `GET` or the form of a `POST`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogoutRequest {
    /// `id_token_hint`: an id_token we issued to the client, naming the user.
    pub id_token_hint: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `post_logout_redirect_uri`: where to send the browser afterwards (registered).
    pub post_logout_redirect_uri: Option<String>,
    /// `state`, passed back to it.
    pub state: Option<String>,
}

impl LogoutRequest {
    /// Reads the parameters we use (others, such as `logout_hint` and `ui_locales`, are
    /// ignored); a repeated one is `invalid_request`. Empty values are absent.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, OAuthError> {
        let mut request = Self::default();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "id_token_hint" => &mut request.id_token_hint,
                "client_id" => &mut request.client_id,
                "post_logout_redirect_uri" => &mut request.post_logout_redirect_uri,
                "state" => &mut request.state,
                _ => continue,
            };
            if slot.is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "Parameter `{name}` is included more than once"
                )));
            }
            let value = if name == "state" { value.as_str() } else { value.trim() };
            if !value.is_empty() {
                *slot = Some(value.to_owned());
            }
        }
        Ok(request)
    }
}

/// A checked logout request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedLogout {
    /// The client (the hint's `aud`, or `client_id`), if any was named.
    pub client: Option<Client>,
    /// The user the `id_token_hint` names.
    pub hint_subject: Option<String>,
    /// The registered `post_logout_redirect_uri`, if one was asked for.
    pub post_logout_redirect_uri: Option<String>,
    /// `state`.
    pub state: Option<String>,
}

impl ValidatedLogout {
    /// Where to send the browser once signed out: the post-logout redirect URI with `state`.
    pub fn redirect_location(&self) -> Option<String> {
        let uri = self.post_logout_redirect_uri.as_deref()?;
        let params: Vec<(&str, &str)> = self.state.iter().map(|s| ("state", s.as_str())).collect();
        Some(match params.is_empty() {
            true => uri.to_owned(),
            false => redirect_with(uri, false, &params),
        })
    }

    /// Whether the `id_token_hint` names `user_id`.
    pub fn hints_user(&self, user_id: &str) -> bool {
        self.hint_subject.as_deref() == Some(user_id)
    }
}

impl Passport {
    /// Checks a logout request (RP-Initiated Logout 1.0 §2–§3). Every error is shown as a page,
    /// never redirected: `invalid_request` for a hint we did not issue, a `client_id` other
    /// than the hint's audience, a `post_logout_redirect_uri` without a client or not
    /// registered for it (exact match); `invalid_client` for an unknown client.
    pub async fn validate_logout(&self, request: &LogoutRequest) -> Result<ValidatedLogout, OAuthError> {
        let hint = match request.id_token_hint.as_deref() {
            Some(hint) => Some(self.verify_id_token_hint(hint).await?),
            None => None,
        };
        let client_id = match (&hint, request.client_id.as_deref()) {
            (Some(hint), Some(id)) if hint.client_id != id => {
                return Err(OAuthError::invalid_request(
                    "client_id is not the client the id_token_hint was issued to",
                ));
            }
            (Some(hint), _) => Some(hint.client_id.as_str()),
            (None, id) => id,
        };
        let client = match client_id {
            Some(id) => Some(
                self.find_active_client(id)
                    .await?
                    .ok_or_else(OAuthError::invalid_client)?,
            ),
            None => None,
        };
        if let Some(uri) = request.post_logout_redirect_uri.as_deref() {
            let registered = client.as_ref().is_some_and(|c| c.allows_post_logout_redirect(uri));
            if !registered {
                let hint = match client {
                    None => "A post_logout_redirect_uri needs client_id or id_token_hint",
                    Some(_) => "The post_logout_redirect_uri is not registered for this client",
                };
                return Err(OAuthError::new(ErrorCode::InvalidRequest).with_hint(hint));
            }
        }
        Ok(ValidatedLogout {
            client,
            hint_subject: hint.map(|h| h.subject),
            post_logout_redirect_uri: request.post_logout_redirect_uri.clone(),
            state: request.state.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_released_by_scope() {
        assert_eq!(scope_of("given_name"), "profile");
        assert_eq!(scope_of("email_verified"), "email");
        assert_eq!(scope_of("phone_number"), "phone");
        assert_eq!(scope_of("tenant"), "openid");
        let mut other = Map::new();
        other.insert("name".into(), Value::from("ignored: the field wins"));
        other.insert("picture".into(), Value::from("https://img.example/a"));
        let claims = standard_claims(UserClaims {
            name: Some("Ada".into()),
            email_verified: Some(false),
            other,
            ..UserClaims::default()
        });
        assert_eq!(claims["name"], "Ada");
        assert_eq!(claims["email_verified"], false);
        assert_eq!(claims["picture"], "https://img.example/a");
        assert!(!claims.contains_key("email"), "absent values are left out");
        let mut bad = Map::new();
        bad.insert("nonce".into(), Value::from("x"));
        assert!(refuse_reserved(&bad, "test").is_err());
        bad.clear();
        bad.insert("c_hash".into(), Value::from("x"));
        assert!(refuse_reserved(&bad, "test").is_err());
    }

    #[test]
    fn logout_redirects_carry_state() {
        let logout = ValidatedLogout {
            client: None,
            hint_subject: Some("7".into()),
            post_logout_redirect_uri: Some("https://rp.example/bye?x=1".into()),
            state: Some("a b".into()),
        };
        assert_eq!(
            logout.redirect_location().as_deref(),
            Some("https://rp.example/bye?x=1&state=a+b")
        );
        assert!(logout.hints_user("7") && !logout.hints_user("8"));
        let pairs = [("state", " s "), ("client_id", " c ")].map(|(k, v)| (k.to_owned(), v.to_owned()));
        let request = LogoutRequest::from_pairs(pairs).unwrap();
        assert_eq!(
            (request.state.as_deref(), request.client_id.as_deref()),
            (Some(" s "), Some("c"))
        );
    }
}
