//! The authorization endpoint (RFC 6749 §3.1, §4.1.1, §4.2.1; RFC 7636 §4.3): validating a
//! request, the decision what to do with it, and completing it once the user has decided.
//!
//! Validation fails in two ways ([`AuthorizeError`]): errors about the client or its redirect
//! URI are shown to the user and **never** redirected (the URI is not trusted yet); every later
//! error is redirected to the validated URI with `error`, `error_description` and `state`.
//! [`decide`] is a pure function from the validated request and the session to a [`Decision`].

use serde::{Deserialize, Serialize};

use crate::client::{Client, ClientId, GrantType};
use crate::error::{ErrorCode, OAuthError};
use crate::passport::{Family, MintSpec, Passport};
use crate::pkce::{PkceMethod, valid_pkce_string};
use crate::random::random_hex;
use crate::redirect::authorize_redirect_uri;
use crate::scope::ScopeSet;
use crate::secret::sha256_hex;
use crate::store::AuthCodeRecord;

/// Authorization codes live ten minutes (RFC 6749 §4.1.2 recommends at most ten).
pub const AUTH_CODE_TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// `response_type=code` or `response_type=token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseType {
    /// Authorization code grant.
    #[serde(rename = "code")]
    Code,
    /// Implicit grant: the token goes in the redirect fragment.
    #[serde(rename = "token")]
    Token,
}

/// The `prompt` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prompt {
    /// Never show a page: fail with `login_required` / `consent_required` instead.
    #[serde(rename = "none")]
    None,
    /// Always ask for consent.
    #[serde(rename = "consent")]
    Consent,
    /// Make the user log in again.
    #[serde(rename = "login")]
    Login,
}

/// The raw query of `GET /oauth/authorize`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// `response_type`.
    pub response_type: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// `code_challenge`.
    pub code_challenge: Option<String>,
    /// `code_challenge_method`.
    pub code_challenge_method: Option<String>,
    /// `prompt`.
    pub prompt: Option<String>,
    /// `nonce` (OpenID Connect Core §3.1.2.1), carried to the code.
    pub nonce: Option<String>,
    /// `max_age` (OpenID Connect Core §3.1.2.1), carried to the code.
    pub max_age: Option<String>,
}

impl AuthorizationRequest {
    /// Builds a request from query pairs. A repeated parameter is `invalid_request` (RFC 6749
    /// §3.1), shown as a page since nothing has been validated yet. Empty values are absent.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, OAuthError> {
        let mut request = Self::default();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "response_type" => &mut request.response_type,
                "client_id" => &mut request.client_id,
                "redirect_uri" => &mut request.redirect_uri,
                "scope" => &mut request.scope,
                "state" => &mut request.state,
                "code_challenge" => &mut request.code_challenge,
                "code_challenge_method" => &mut request.code_challenge_method,
                "prompt" => &mut request.prompt,
                "nonce" => &mut request.nonce,
                "max_age" => &mut request.max_age,
                _ => continue,
            };
            if slot.is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "Parameter `{name}` is included more than once"
                )));
            }
            // `state` and `nonce` are opaque and must come back exactly as sent (RFC 6749 §4.1.2,
            // OpenID Connect Core §3.1.2.1): no trimming.
            let value = if name == "state" || name == "nonce" {
                value.as_str()
            } else {
                value.trim()
            };
            if !value.is_empty() {
                *slot = Some(value.to_owned());
            }
        }
        Ok(request)
    }
}

/// Extension parameters of an authorization request that travel with the code to the token
/// endpoint (OpenID Connect needs them there: `nonce` goes into the id_token).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationExtensions {
    /// `nonce`, echoed in the id_token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// `max_age` in seconds: the longest time since the user last signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
}

impl AuthorizationExtensions {
    /// True when no extension was given.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A validated authorization request: what the consent page shows and approval completes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatedAuthorization {
    /// `code` or `token`.
    pub response_type: ResponseType,
    /// The client id.
    pub client_id: ClientId,
    /// Where to send the user back (validated).
    pub redirect_uri: String,
    /// Whether the request carried `redirect_uri` (then the token request must repeat it).
    pub redirect_uri_given: bool,
    /// Requested scopes (known; defaults applied).
    pub scopes: ScopeSet,
    /// `state`, echoed back.
    pub state: Option<String>,
    /// PKCE challenge.
    pub code_challenge: Option<String>,
    /// PKCE method.
    pub code_challenge_method: Option<PkceMethod>,
    /// `prompt`.
    pub prompt: Option<Prompt>,
    /// Extension parameters carried to the code.
    #[serde(default)]
    pub extensions: AuthorizationExtensions,
}

/// An error redirected to the client (RFC 6749 §4.1.2.1 / §4.2.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRedirect {
    /// The complete `Location`.
    pub location: String,
    /// The error carried.
    pub error: OAuthError,
}

/// Why an authorization request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// Show an error page (client or redirect URI not trustworthy): never redirect.
    Show(OAuthError),
    /// Redirect to the client with the error.
    Redirect(ErrorRedirect),
}

impl From<OAuthError> for AuthorizeError {
    fn from(err: OAuthError) -> Self {
        Self::Show(err)
    }
}

/// What the endpoint should do with a validated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send the user to the login page (and back here afterwards). `force` is set for
    /// `prompt=login` on a signed-in user: end the session first.
    Login {
        /// Sign the current user out before showing the login page.
        force: bool,
    },
    /// Issue the code or token right away (already granted, or the client skips consent).
    Approve,
    /// Show the consent page.
    AskConsent,
    /// Redirect with an error (`login_required`, `consent_required`).
    Redirect(ErrorRedirect),
}

/// Where the request stands with the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserState {
    /// Someone is signed in.
    pub signed_in: bool,
    /// The user just logged in because this request asked for it (`prompt=login` satisfied).
    pub prompted_login: bool,
    /// The user already holds live tokens for this client covering the requested scopes.
    pub already_granted: bool,
    /// The client skips the consent screen.
    pub client_skips_consent: bool,
}

/// The authorize decision (Passport 13's `AuthorizationController`, as a pure function).
pub fn decide(request: &ValidatedAuthorization, user: UserState) -> Decision {
    let prompt = request.prompt;
    if !user.signed_in {
        if prompt == Some(Prompt::None) {
            return Decision::Redirect(error_redirect(
                request,
                OAuthError::new(ErrorCode::LoginRequired).with_hint("The user is not authenticated"),
            ));
        }
        return Decision::Login { force: false };
    }
    if prompt == Some(Prompt::Login) && !user.prompted_login {
        return Decision::Login { force: true };
    }
    if prompt != Some(Prompt::Consent) && (user.client_skips_consent || user.already_granted) {
        return Decision::Approve;
    }
    if prompt == Some(Prompt::None) {
        return Decision::Redirect(error_redirect(request, OAuthError::new(ErrorCode::ConsentRequired)));
    }
    Decision::AskConsent
}

/// Builds `uri` + `?` (code) or `#` (token) + the parameters, URL-encoded; `&` when the URI
/// already has a query (or fragment).
pub fn redirect_with(uri: &str, fragment: bool, params: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let query = query.finish();
    let separator = match (fragment, uri.contains('#'), uri.contains('?')) {
        (true, true, _) | (false, _, true) => '&',
        (true, false, _) => '#',
        (false, _, false) => '?',
    };
    format!("{uri}{separator}{query}")
}

/// An error redirect to the request's validated URI, carrying `state`.
pub fn error_redirect(request: &ValidatedAuthorization, error: OAuthError) -> ErrorRedirect {
    let mut params: Vec<(&str, &str)> = Vec::with_capacity(4);
    if let Some(state) = &request.state {
        params.push(("state", state));
    }
    params.push(("error", error.code().as_str()));
    params.push(("error_description", error.description()));
    if let Some(hint) = error.hint() {
        params.push(("hint", hint));
    }
    let location = redirect_with(
        &request.redirect_uri,
        request.response_type == ResponseType::Token,
        &params,
    );
    ErrorRedirect { location, error }
}

impl Passport {
    /// Validates an authorization request. Errors: an unknown client, a missing `client_id` or
    /// `response_type`, or an unregistered `redirect_uri` are [`AuthorizeError::Show`]; then
    /// `unsupported_response_type`, `unauthorized_client`, `invalid_scope` and PKCE
    /// `invalid_request` are [`AuthorizeError::Redirect`].
    pub async fn validate_authorization(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<(ValidatedAuthorization, Client), AuthorizeError> {
        let client_id = request
            .client_id
            .as_deref()
            .ok_or_else(|| OAuthError::invalid_parameter("client_id"))?;
        let response_type = request
            .response_type
            .as_deref()
            .ok_or_else(|| OAuthError::invalid_parameter("response_type"))?;
        let client = self
            .find_active_client(client_id)
            .await
            .map_err(AuthorizeError::Show)?
            .ok_or_else(OAuthError::invalid_client)?;
        let redirect_uri = authorize_redirect_uri(&client.redirect_uris, request.redirect_uri.as_deref())?;

        let prompt = match request.prompt.as_deref() {
            Some("none") => Some(Prompt::None),
            Some("consent") => Some(Prompt::Consent),
            Some("login") => Some(Prompt::Login),
            _ => None,
        };
        let mut validated = ValidatedAuthorization {
            response_type: if response_type == "token" {
                ResponseType::Token
            } else {
                ResponseType::Code
            },
            client_id: client.id.clone(),
            redirect_uri,
            redirect_uri_given: request.redirect_uri.is_some(),
            scopes: ScopeSet::new(),
            state: request.state.clone(),
            code_challenge: None,
            code_challenge_method: None,
            prompt,
            extensions: AuthorizationExtensions {
                nonce: request.nonce.clone(),
                max_age: request.max_age.as_deref().and_then(|m| m.parse().ok()),
            },
        };
        let redirect = |v: &ValidatedAuthorization, e: OAuthError| AuthorizeError::Redirect(error_redirect(v, e));

        let grant = match response_type {
            "code" => GrantType::AuthorizationCode,
            "token" if self.grant_enabled(GrantType::Implicit) => GrantType::Implicit,
            _ => {
                validated.response_type = ResponseType::Code;
                return Err(redirect(
                    &validated,
                    OAuthError::new(ErrorCode::UnsupportedResponseType),
                ));
            }
        };
        // The login and consent pages sign in users of the default provider: a client serving
        // another provider must not receive their tokens (its guard would read the user id as
        // one of its own users).
        if !client.supports_grant(grant)
            || !client.belongs_to_provider(self.default_provider(), self.default_provider())
        {
            return Err(redirect(&validated, OAuthError::unauthorized_client()));
        }
        validated.scopes = self
            .scopes()
            .requested(request.scope.as_deref())
            .map_err(|e| redirect(&validated, e))?;

        if grant == GrantType::AuthorizationCode {
            match &request.code_challenge {
                Some(challenge) => {
                    let method = match request.code_challenge_method.as_deref().map(str::parse) {
                        None => PkceMethod::Plain,
                        Some(Ok(method)) => method,
                        Some(Err(())) => {
                            return Err(redirect(
                                &validated,
                                OAuthError::invalid_request("Code challenge method must be one of `S256`, `plain`"),
                            ));
                        }
                    };
                    if !valid_pkce_string(challenge) {
                        return Err(redirect(
                            &validated,
                            OAuthError::invalid_request("Code challenge must follow the specifications of RFC-7636."),
                        ));
                    }
                    validated.code_challenge = Some(challenge.clone());
                    validated.code_challenge_method = Some(method);
                }
                None if !client.is_confidential() => {
                    return Err(redirect(
                        &validated,
                        OAuthError::invalid_request("Code challenge must be provided for public clients"),
                    ));
                }
                None => {}
            }
        }
        Ok((validated, client))
    }

    /// Where `request` stands with the person at the browser (the input of [`decide`]):
    /// `user_id` is who is signed in, `prompted_login` whether they just signed in because this
    /// request asked for it.
    pub async fn user_state(
        &self,
        user_id: Option<&str>,
        prompted_login: bool,
        request: &ValidatedAuthorization,
        client: &Client,
    ) -> Result<UserState, OAuthError> {
        let already_granted = match user_id {
            Some(user_id) => self.has_granted_scopes(user_id, request).await?,
            None => false,
        };
        Ok(UserState {
            signed_in: user_id.is_some(),
            prompted_login,
            already_granted,
            client_skips_consent: client.skips_authorization,
        })
    }

    /// Whether the user's live tokens for the client already cover the requested scopes
    /// (Passport 13's `hasGrantedScopes`).
    pub async fn has_granted_scopes(
        &self,
        user_id: &str,
        request: &ValidatedAuthorization,
    ) -> Result<bool, OAuthError> {
        let granted = self
            .store()
            .granted_scopes(user_id, request.client_id.as_str(), self.now())
            .await?;
        let union: Vec<&String> = granted.iter().flatten().collect();
        Ok(!union.is_empty() && request.scopes.iter().all(|s| union.contains(&s)))
    }

    /// Completes an approved request for `user_id`: issues the code (or, for the implicit grant,
    /// the token) and returns the redirect `Location`. Fails when the client was revoked
    /// meanwhile (`invalid_client`, shown as a page).
    pub async fn approve_authorization(
        &self,
        request: &ValidatedAuthorization,
        user_id: &str,
    ) -> Result<String, AuthorizeError> {
        let client = self.registered_client(request).await?;
        let state = request.state.as_deref();
        match request.response_type {
            ResponseType::Code => {
                let code = random_hex(40)?;
                let now = self.now();
                let record = AuthCodeRecord {
                    id: sha256_hex(&code),
                    user_id: user_id.to_owned(),
                    client_id: client.id.clone(),
                    scopes: request.scopes.clone(),
                    redirect_uri: request.redirect_uri_given.then(|| request.redirect_uri.clone()),
                    code_challenge: request.code_challenge.clone(),
                    code_challenge_method: request.code_challenge_method,
                    extensions: request.extensions.clone(),
                    revoked: false,
                    created_at: now,
                    expires_at: now + AUTH_CODE_TTL,
                };
                self.store().insert_auth_code(&record).await.map_err(OAuthError::from)?;
                let mut params = vec![("code", code.as_str())];
                if let Some(state) = state {
                    params.push(("state", state));
                }
                Ok(redirect_with(&request.redirect_uri, false, &params))
            }
            ResponseType::Token => {
                let scopes = self
                    .scopes()
                    .finalize(request.scopes.clone(), GrantType::Implicit, &client);
                let minted = self
                    .mint(MintSpec {
                        grant: GrantType::Implicit,
                        client: &client,
                        user_id: Some(user_id.to_owned()),
                        scopes,
                        ttl: self.settings().tokens_expire_in,
                        name: None,
                        family: Family::None,
                        with_refresh: false,
                    })
                    .await?;
                self.store()
                    .insert_tokens(&minted.access, None)
                    .await
                    .map_err(OAuthError::from)?;
                self.announce(&minted);
                let expires_in = (minted.access.expires_at - self.now()).num_seconds().to_string();
                let granted = minted.access.scopes.to_param();
                let mut params = vec![
                    ("access_token", minted.jwt.as_str()),
                    ("token_type", "Bearer"),
                    ("expires_in", expires_in.as_str()),
                ];
                if minted.access.scopes != request.scopes {
                    params.push(("scope", granted.as_str()));
                }
                if let Some(state) = state {
                    params.push(("state", state));
                }
                Ok(redirect_with(&request.redirect_uri, true, &params))
            }
        }
    }

    /// The redirect for a denied request: `access_denied` with `state`. Fails (shown as a page)
    /// when the client was revoked or dropped the redirect URI meanwhile.
    pub async fn deny_authorization(&self, request: &ValidatedAuthorization) -> Result<String, AuthorizeError> {
        self.registered_client(request).await?;
        Ok(error_redirect(request, OAuthError::access_denied("The user denied the request")).location)
    }

    /// The request's client, still live and still registering the request's redirect URI.
    async fn registered_client(
        &self,
        request: &ValidatedAuthorization,
    ) -> Result<crate::client::Client, AuthorizeError> {
        let client = self
            .find_active_client(request.client_id.as_str())
            .await?
            .ok_or_else(OAuthError::invalid_client)?;
        // The client may have changed its redirect URIs while the consent page was open.
        if !client
            .redirect_uris
            .iter()
            .any(|r| r.matches(&request.redirect_uri).is_some())
        {
            return Err(OAuthError::invalid_client()
                .with_hint("The redirect URI is no longer registered for this client")
                .into());
        }
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(prompt: Option<Prompt>) -> ValidatedAuthorization {
        ValidatedAuthorization {
            response_type: ResponseType::Code,
            client_id: "c".into(),
            redirect_uri: "https://app.example/cb".into(),
            redirect_uri_given: true,
            scopes: ScopeSet::parse(Some("read")),
            state: Some("a b&c".into()),
            code_challenge: None,
            code_challenge_method: None,
            prompt,
            extensions: AuthorizationExtensions::default(),
        }
    }

    const GUEST: UserState = UserState {
        signed_in: false,
        prompted_login: false,
        already_granted: false,
        client_skips_consent: false,
    };

    #[test]
    fn decision_table() {
        let user = UserState {
            signed_in: true,
            ..GUEST
        };
        assert_eq!(decide(&request(None), GUEST), Decision::Login { force: false });
        match decide(&request(Some(Prompt::None)), GUEST) {
            Decision::Redirect(r) => {
                assert_eq!(r.error.code(), ErrorCode::LoginRequired);
                assert!(
                    r.location
                        .starts_with("https://app.example/cb?state=a+b%26c&error=login_required")
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decide(&request(Some(Prompt::Login)), user),
            Decision::Login { force: true }
        );
        let prompted = UserState {
            prompted_login: true,
            ..user
        };
        assert_eq!(decide(&request(Some(Prompt::Login)), prompted), Decision::AskConsent);
        assert_eq!(decide(&request(None), user), Decision::AskConsent);
        let granted = UserState {
            already_granted: true,
            ..user
        };
        assert_eq!(decide(&request(None), granted), Decision::Approve);
        assert_eq!(decide(&request(Some(Prompt::Consent)), granted), Decision::AskConsent);
        let skips = UserState {
            client_skips_consent: true,
            ..user
        };
        assert_eq!(decide(&request(None), skips), Decision::Approve);
        assert!(
            matches!(decide(&request(Some(Prompt::None)), user), Decision::Redirect(r) if r.error.code() == ErrorCode::ConsentRequired)
        );
    }

    #[test]
    fn redirects_are_url_encoded_with_the_right_separator() {
        assert_eq!(
            redirect_with("https://a/cb", false, &[("code", "x y")]),
            "https://a/cb?code=x+y"
        );
        assert_eq!(
            redirect_with("https://a/cb?k=1", false, &[("code", "x")]),
            "https://a/cb?k=1&code=x"
        );
        assert_eq!(
            redirect_with("https://a/cb", true, &[("access_token", "t")]),
            "https://a/cb#access_token=t"
        );
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let pairs = vec![
            ("state".to_owned(), "a".to_owned()),
            ("state".to_owned(), "b".to_owned()),
        ];
        assert!(AuthorizationRequest::from_pairs(pairs).is_err());
    }

    #[test]
    fn nonce_and_max_age_are_kept() {
        let pairs =
            [("nonce", " n-0 "), ("max_age", " 300 "), ("scope", " read ")].map(|(k, v)| (k.to_owned(), v.to_owned()));
        let request = AuthorizationRequest::from_pairs(pairs).unwrap();
        assert_eq!(request.nonce.as_deref(), Some(" n-0 "), "opaque: not trimmed");
        assert_eq!(request.max_age.as_deref(), Some("300"));
    }
}
