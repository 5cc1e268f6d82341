//! The authorization endpoint (RFC 6749 §3.1, §4.1.1, §4.2.1; RFC 7636 §4.3; OpenID Connect
//! Core §3.1.2, §3.2.2): validating a request, the decision what to do with it, and completing
//! it once the user has decided.
//!
//! Validation fails in two ways ([`AuthorizeError`]): errors about the client or its redirect
//! URI are shown to the user and **never** redirected (the URI is not trusted yet); every later
//! error goes back to the validated URI with `error`, `error_description` and `state`.
//! [`decide`] is a pure function from the validated request and the session to a [`Decision`].
//!
//! Every answer to the client is an [`AuthorizationResponse`]: its parameters, delivered in the
//! query, the fragment or an auto-submitted form (`response_mode`, OAuth 2.0 Multiple Response
//! Types §2.1 and Form Post Response Mode), and carrying `iss` (RFC 9207) whenever an issuer is
//! configured.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::client::{Client, ClientId, GrantType};
use crate::error::{ErrorCode, OAuthError};
use crate::oidc::IdTokenSpec;
use crate::passport::{Family, MintSpec, Passport};
use crate::pkce::{PkceMethod, valid_pkce_string};
use crate::random::random_hex;
use crate::redirect::authorize_redirect_uri;
use crate::scope::ScopeSet;
use crate::secret::sha256_hex;
use crate::store::AuthCodeRecord;

/// Authorization codes live ten minutes (RFC 6749 §4.1.2 recommends at most ten).
pub const AUTH_CODE_TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// How long a code of a FAPI 2.0 client lives (FAPI 2.0 §5.3.2.1: at most 60 s).
pub const FAPI_AUTH_CODE_TTL: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// What the client asks to get back (`response_type`). Everything but `code` needs the
/// implicit grant; the `id_token` ones are OpenID Connect's implicit flow (Core §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ResponseType {
    /// Authorization code grant.
    #[serde(rename = "code")]
    Code,
    /// Implicit grant: the token goes in the redirect fragment.
    #[serde(rename = "token")]
    Token,
    /// OpenID Connect implicit flow, an id_token only.
    #[serde(rename = "id_token")]
    IdToken,
    /// OpenID Connect implicit flow, an id_token and an access token.
    #[serde(rename = "id_token token")]
    IdTokenToken,
}

impl ResponseType {
    /// Parses `response_type`, a space-delimited set (OAuth 2.0 Multiple Response Types §3):
    /// `code`, `token`, `id_token`, `id_token token` (in any order). Others (hybrid flows
    /// with `code id_token`, `none`) are not supported.
    fn parse(value: &str) -> Option<Self> {
        let mut parts: Vec<&str> = value.split(' ').filter(|p| !p.is_empty()).collect();
        parts.sort_unstable();
        match parts.as_slice() {
            ["code"] => Some(Self::Code),
            ["token"] => Some(Self::Token),
            ["id_token"] => Some(Self::IdToken),
            ["id_token", "token"] => Some(Self::IdTokenToken),
            _ => None,
        }
    }

    /// Whether the response carries an access token (implicit grant).
    pub fn issues_access_token(self) -> bool {
        matches!(self, Self::Token | Self::IdTokenToken)
    }

    /// Whether the response carries an id_token (OpenID Connect implicit flow).
    pub fn issues_id_token(self) -> bool {
        matches!(self, Self::IdToken | Self::IdTokenToken)
    }

    /// The response mode used when the request names none (Multiple Response Types §2.1, §3):
    /// the query for codes, the fragment for everything else.
    pub fn default_mode(self) -> ResponseMode {
        match self {
            Self::Code => ResponseMode::Query,
            _ => ResponseMode::Fragment,
        }
    }

    fn grant(self) -> GrantType {
        match self {
            Self::Code => GrantType::AuthorizationCode,
            _ => GrantType::Implicit,
        }
    }
}

/// How the answer reaches the client (`response_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    /// In the redirect URI's query.
    #[serde(rename = "query")]
    Query,
    /// In the redirect URI's fragment.
    #[serde(rename = "fragment")]
    Fragment,
    /// POSTed to the redirect URI by an auto-submitting HTML form (OAuth 2.0 Form Post Response
    /// Mode §2).
    #[serde(rename = "form_post")]
    FormPost,
}

impl ResponseMode {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "query" => Some(Self::Query),
            "fragment" => Some(Self::Fragment),
            "form_post" => Some(Self::FormPost),
            _ => None,
        }
    }
}

/// A value of the `prompt` parameter (OpenID Connect Core §3.1.2.1; a space-delimited list).
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
    /// Let the user pick an account (there is one per session here: accepted, changes nothing).
    #[serde(rename = "select_account")]
    SelectAccount,
}

impl Prompt {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "none" => Some(Self::None),
            "consent" => Some(Self::Consent),
            "login" => Some(Self::Login),
            "select_account" => Some(Self::SelectAccount),
            _ => None,
        }
    }
}

/// The raw query of `GET /oauth/authorize` (or the body of a pushed request, RFC 9126 §2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
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
    /// `response_mode` (OAuth 2.0 Multiple Response Types §2.1).
    pub response_mode: Option<String>,
    /// `login_hint` (OpenID Connect Core §3.1.2.1): pre-fills the sign-in form.
    pub login_hint: Option<String>,
    /// `id_token_hint` (OpenID Connect Core §3.1.2.1): an id_token we issued, naming the user
    /// the client expects.
    pub id_token_hint: Option<String>,
    /// `request_uri` (RFC 9126 §4): the reference to a pushed request, whose parameters replace
    /// these.
    pub request_uri: Option<String>,
    /// `dpop_jkt` (RFC 9449 §10): the thumbprint of the DPoP key the code's exchange must
    /// prove, carried to the code.
    pub dpop_jkt: Option<String>,
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
                "response_mode" => &mut request.response_mode,
                "login_hint" => &mut request.login_hint,
                "id_token_hint" => &mut request.id_token_hint,
                "request_uri" => &mut request.request_uri,
                "dpop_jkt" => &mut request.dpop_jkt,
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
/// endpoint (OpenID Connect needs them there: `nonce` and `auth_time` go into the id_token).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationExtensions {
    /// `nonce`, echoed in the id_token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// `max_age` in seconds: the longest time since the user last signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// When the user who approved signed in (Unix seconds), for the id_token's `auth_time`.
    /// Set on approval of OpenID Connect requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// `dpop_jkt` (RFC 9449 §10): the code is exchanged only with a proof of this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
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
    /// What the client gets back.
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
    /// The `prompt` values (`none` only ever alone).
    #[serde(default, deserialize_with = "one_or_many")]
    pub prompt: Vec<Prompt>,
    /// Extension parameters carried to the code.
    #[serde(default)]
    pub extensions: AuthorizationExtensions,
    /// The requested `response_mode`, when allowed for the response type (`None`: the
    /// type's default).
    #[serde(default)]
    pub response_mode: Option<ResponseMode>,
    /// The server's issuer, sent as `iss` with every response (RFC 9207).
    #[serde(default)]
    pub issuer: Option<String>,
    /// `login_hint`, for the sign-in form.
    #[serde(default)]
    pub login_hint: Option<String>,
    /// The `sub` of a valid `id_token_hint`: the user the client expects.
    #[serde(default)]
    pub id_token_hint_subject: Option<String>,
}

/// Reads `prompt` as stored by this version (a list) or the one before (one value or null).
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Prompt>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(Prompt),
        Many(Vec<Prompt>),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => Vec::new(),
        Some(Either::One(p)) => vec![p],
        Some(Either::Many(v)) => v,
    })
}

impl ValidatedAuthorization {
    /// Whether `prompt` names `value`.
    pub fn prompts(&self, value: Prompt) -> bool {
        self.prompt.contains(&value)
    }

    /// Whether this is an OpenID Connect authentication request (`openid` among the scopes).
    pub fn is_openid(&self) -> bool {
        self.scopes.contains(crate::oidc::OPENID)
    }

    /// How the answer is delivered: the requested `response_mode`, or the type's default.
    pub fn mode(&self) -> ResponseMode {
        self.response_mode.unwrap_or(self.response_type.default_mode())
    }

    /// Whether the request demands that the user has authenticated recently or as a given
    /// user (`prompt=login`, `max_age`, `id_token_hint`): a sign-in it causes answers it.
    pub fn demands_authentication(&self) -> bool {
        self.prompts(Prompt::Login) || self.extensions.max_age.is_some() || self.id_token_hint_subject.is_some()
    }

    /// The answer to the client with `params`, then `state` and `iss`.
    fn respond(&self, params: Vec<(&str, String)>) -> AuthorizationResponse {
        let mut params: Vec<(String, String)> = params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        if let Some(state) = &self.state {
            params.push(("state".to_owned(), state.clone()));
        }
        if let Some(issuer) = &self.issuer {
            params.push(("iss".to_owned(), issuer.clone()));
        }
        AuthorizationResponse {
            redirect_uri: self.redirect_uri.clone(),
            mode: self.mode(),
            params,
        }
    }
}

/// An answer to the client at its validated redirect URI: success or error parameters and how
/// they are delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationResponse {
    /// The validated redirect URI.
    pub redirect_uri: String,
    /// Query, fragment, or form post.
    pub mode: ResponseMode,
    /// The parameters, in order.
    pub params: Vec<(String, String)>,
}

impl AuthorizationResponse {
    /// The `Location` of the redirect, for the query and fragment modes; `None` for
    /// `form_post`, which is a page that posts [`params`](Self::params) to
    /// [`redirect_uri`](Self::redirect_uri).
    pub fn location(&self) -> Option<String> {
        let fragment = match self.mode {
            ResponseMode::Query => false,
            ResponseMode::Fragment => true,
            ResponseMode::FormPost => return None,
        };
        let params: Vec<(&str, &str)> = self.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Some(redirect_with(&self.redirect_uri, fragment, &params))
    }

    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// An error sent to the client (RFC 6749 §4.1.2.1 / §4.2.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRedirect {
    /// The answer carrying the error.
    pub response: AuthorizationResponse,
    /// The error carried.
    pub error: OAuthError,
}

/// Why an authorization request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// Show an error page (client or redirect URI not trustworthy): never redirect.
    Show(OAuthError),
    /// Send the error to the client.
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
    /// Send the user to the login page (and back here afterwards). `force` is set when a
    /// signed-in user must sign in again (`prompt=login`, `max_age`, an `id_token_hint` naming
    /// someone else); they stay signed in until that sign-in succeeds.
    Login {
        /// A signed-in user must authenticate again.
        force: bool,
    },
    /// Issue the code or token right away (already granted, or the client skips consent).
    Approve,
    /// Show the consent page.
    AskConsent,
    /// Send an error to the client (`login_required`, `consent_required`).
    Redirect(ErrorRedirect),
}

/// Where the request stands with the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserState {
    /// Someone is signed in.
    pub signed_in: bool,
    /// The user just signed in because this request asked for it (`prompt=login`, `max_age`
    /// or `id_token_hint` satisfied).
    pub prompted_login: bool,
    /// The user already holds live tokens for this client covering the requested scopes.
    pub already_granted: bool,
    /// The client skips the consent screen.
    pub client_skips_consent: bool,
    /// Seconds since the signed-in user authenticated, when known (for `max_age`).
    pub auth_age: Option<i64>,
    /// The request's `id_token_hint` names someone other than the signed-in user.
    pub other_user_hinted: bool,
}

/// The authorize decision (Passport 13's `AuthorizationController`, as a pure function, with
/// OpenID Connect Core §3.1.2.3's authentication rules): a guest signs in; a signed-in user
/// signs in again for `prompt=login`, when `max_age` has passed since they authenticated, or
/// when the `id_token_hint` names someone else; with `prompt=none` each of those is
/// `login_required`, and a needed consent page `consent_required` (§3.1.2.6).
pub fn decide(request: &ValidatedAuthorization, user: UserState) -> Decision {
    let none = request.prompts(Prompt::None);
    let login_required = |hint: &'static str| {
        Decision::Redirect(error_redirect(
            request,
            OAuthError::new(ErrorCode::LoginRequired).with_hint(hint),
        ))
    };
    if !user.signed_in {
        return match none {
            true => login_required("The user is not authenticated"),
            false => Decision::Login { force: false },
        };
    }
    if user.other_user_hinted && (none || user.prompted_login) {
        // §3.1.2.1 id_token_hint: "If the End-User identified by the ID Token is logged in or
        // is logged in by the request, then the Authorization Server returns a positive
        // response; otherwise, it SHOULD return an error, such as login_required."
        return login_required("The signed-in user is not the one the id_token_hint names");
    }
    // §3.1.2.1: "max_age=0 is equivalent to prompt=login".
    let too_old = match (request.extensions.max_age, user.auth_age) {
        (Some(0), _) => true,
        (Some(max_age), Some(age)) => age > i64::try_from(max_age).unwrap_or(i64::MAX),
        (Some(_), None) => true,
        (None, _) => false,
    };
    if !user.prompted_login && (request.prompts(Prompt::Login) || too_old || user.other_user_hinted) {
        return match none {
            true => login_required("The user must authenticate again (max_age)"),
            false => Decision::Login { force: true },
        };
    }
    if !request.prompts(Prompt::Consent) && (user.client_skips_consent || user.already_granted) {
        return Decision::Approve;
    }
    if none {
        return Decision::Redirect(error_redirect(request, OAuthError::new(ErrorCode::ConsentRequired)));
    }
    Decision::AskConsent
}

/// Builds `uri` + `?` (query) or `#` (fragment) + the parameters, URL-encoded; `&` when the URI
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

/// An error for the request's validated URI, carrying `state` (and `iss`).
pub fn error_redirect(request: &ValidatedAuthorization, error: OAuthError) -> ErrorRedirect {
    let mut params = vec![
        ("error", error.code().as_str().to_owned()),
        ("error_description", error.description().to_owned()),
    ];
    if let Some(hint) = error.hint() {
        params.push(("hint", hint.to_owned()));
    }
    let mut response = request.respond(params);
    // `state` first, as before: error pages of clients sometimes show the raw query.
    if let Some(i) = response.params.iter().position(|(k, _)| k == "state") {
        let state = response.params.remove(i);
        response.params.insert(0, state);
    }
    ErrorRedirect { response, error }
}

impl Passport {
    /// Validates an authorization request. Errors: an unknown client, a missing `client_id` or
    /// `response_type`, or an unregistered `redirect_uri` are [`AuthorizeError::Show`]; then
    /// `unsupported_response_type`, `unauthorized_client`, `invalid_scope`, `invalid_request`
    /// (PKCE; a bad `response_mode`, `prompt`, `max_age` or `id_token_hint`; the implicit
    /// flow's `nonce` missing) and `server_error` (an OpenID Connect request without a
    /// configured issuer) are [`AuthorizeError::Redirect`].
    pub async fn validate_authorization(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<(ValidatedAuthorization, Client), AuthorizeError> {
        let client_id = request
            .client_id
            .as_deref()
            .ok_or_else(|| OAuthError::invalid_parameter("client_id"))?;
        let response_type_param = request
            .response_type
            .as_deref()
            .ok_or_else(|| OAuthError::invalid_parameter("response_type"))?;
        let client = self
            .find_active_client(client_id)
            .await
            .map_err(AuthorizeError::Show)?
            .ok_or_else(OAuthError::invalid_client)?;
        let redirect_uri = authorize_redirect_uri(&client.redirect_uris, request.redirect_uri.as_deref())?;

        let response_type =
            ResponseType::parse(response_type_param).filter(|t| *t == ResponseType::Code || self.implicit_enabled());
        let response_mode = request.response_mode.as_deref().map(ResponseMode::parse);
        let kind = response_type.unwrap_or(ResponseType::Code);
        let mut validated = ValidatedAuthorization {
            response_type: kind,
            client_id: client.id.clone(),
            redirect_uri,
            redirect_uri_given: request.redirect_uri.is_some(),
            scopes: ScopeSet::new(),
            state: request.state.clone(),
            code_challenge: None,
            code_challenge_method: None,
            prompt: Vec::new(),
            extensions: AuthorizationExtensions {
                nonce: request.nonce.clone(),
                max_age: None,
                auth_time: None,
                dpop_jkt: request.dpop_jkt.clone(),
            },
            // Multiple Response Types §5: tokens in the query "MUST NOT" be used.
            response_mode: response_mode
                .flatten()
                .filter(|m| !(kind != ResponseType::Code && *m == ResponseMode::Query)),
            issuer: self.settings().issuer.clone(),
            login_hint: request.login_hint.clone(),
            id_token_hint_subject: None,
        };
        let redirect = |v: &ValidatedAuthorization, e: OAuthError| AuthorizeError::Redirect(error_redirect(v, e));

        if response_mode == Some(None) {
            return Err(redirect(
                &validated,
                OAuthError::invalid_request("Response mode must be one of `query`, `fragment`, `form_post`"),
            ));
        }
        let Some(response_type) = response_type else {
            return Err(redirect(
                &validated,
                OAuthError::new(ErrorCode::UnsupportedResponseType),
            ));
        };
        if response_mode == Some(Some(ResponseMode::Query)) && validated.response_mode.is_none() {
            return Err(redirect(
                &validated,
                OAuthError::invalid_request("Tokens are never sent in the query: use `fragment` or `form_post`"),
            ));
        }
        // The login and consent pages sign in users of the default provider: a client serving
        // another provider must not receive their tokens (its guard would read the user id as
        // one of its own users).
        if !client.supports_grant(response_type.grant())
            || !client.belongs_to_provider(self.default_provider(), self.default_provider())
        {
            return Err(redirect(&validated, OAuthError::unauthorized_client()));
        }
        validated.scopes = self
            .scopes()
            .requested(request.scope.as_deref())
            .map_err(|e| redirect(&validated, e))?;

        validated.prompt = parse_prompt(request.prompt.as_deref()).map_err(|e| redirect(&validated, e))?;
        validated.extensions.max_age = match request.max_age.as_deref().map(str::parse::<u64>) {
            None => None,
            Some(Ok(seconds)) => Some(seconds),
            Some(Err(_)) => {
                return Err(redirect(
                    &validated,
                    OAuthError::invalid_request("max_age must be a number of seconds"),
                ));
            }
        };
        // RFC 9449 §10: a JWK SHA-256 thumbprint, base64url (43 characters).
        let thumbprint =
            |j: &str| j.len() == 43 && j.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if validated.extensions.dpop_jkt.as_deref().is_some_and(|j| !thumbprint(j)) {
            return Err(redirect(
                &validated,
                OAuthError::invalid_request("dpop_jkt must be a JWK SHA-256 thumbprint (RFC 9449 §10)"),
            ));
        }
        self.validate_openid(&mut validated, request)
            .await
            .map_err(|e| redirect(&validated, e))?;

        if client.dpop_bound_access_tokens && response_type != ResponseType::Code && response_type.issues_access_token()
        {
            // RFC 9449 §5.2: this client's access tokens are DPoP-bound, which a token in the
            // front channel cannot be.
            return Err(redirect(
                &validated,
                OAuthError::new(crate::ErrorCode::UnsupportedResponseType)
                    .with_hint("This client's access tokens are DPoP-bound: use response_type=code"),
            ));
        }
        if self.fapi_applies(&client) {
            // FAPI 2.0 §5.3.2.2: the code flow only, with PKCE S256.
            if response_type != ResponseType::Code {
                return Err(redirect(
                    &validated,
                    OAuthError::new(crate::ErrorCode::UnsupportedResponseType),
                ));
            }
            if request.code_challenge.is_none() || request.code_challenge_method.as_deref() != Some("S256") {
                return Err(redirect(
                    &validated,
                    OAuthError::invalid_request("The FAPI 2.0 profile requires PKCE with code_challenge_method S256"),
                ));
            }
        }
        if response_type == ResponseType::Code {
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

    /// The OpenID Connect rules of a request (Core §3.1.2.2, §3.2.2.1): an id_token needs the
    /// `openid` scope and, in the implicit flow, a `nonce`; an authentication request needs an
    /// issuer; an `id_token_hint` must be one of ours, for this client.
    async fn validate_openid(
        &self,
        validated: &mut ValidatedAuthorization,
        request: &AuthorizationRequest,
    ) -> Result<(), OAuthError> {
        if !validated.is_openid() {
            if validated.response_type.issues_id_token() {
                return Err(OAuthError::invalid_request(
                    "response_type id_token needs the openid scope",
                ));
            }
            return Ok(());
        }
        self.openid_issuer()?;
        if validated.response_type.issues_id_token() && validated.extensions.nonce.is_none() {
            return Err(OAuthError::invalid_request(
                "The nonce parameter is required for the implicit flow",
            ));
        }
        if let Some(hint) = request.id_token_hint.as_deref() {
            let hint = self.verify_id_token_hint(hint).await?;
            if hint.client_id != validated.client_id.as_str() {
                return Err(OAuthError::invalid_request(
                    "The id_token_hint was issued to another client",
                ));
            }
            validated.id_token_hint_subject = Some(hint.subject);
        }
        Ok(())
    }

    fn implicit_enabled(&self) -> bool {
        self.grant_enabled(GrantType::Implicit)
    }

    /// Where `request` stands with the person at the browser (the input of [`decide`]):
    /// `user_id` is who is signed in and `auth_time` when they authenticated,
    /// `prompted_login` whether they just signed in because this request asked for it.
    pub async fn user_state(
        &self,
        user_id: Option<&str>,
        auth_time: Option<DateTime<Utc>>,
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
            auth_age: auth_time.map(|t| (self.now() - t).num_seconds()),
            other_user_hinted: request
                .id_token_hint_subject
                .as_deref()
                .is_some_and(|hinted| Some(hinted) != user_id),
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

    /// Completes an approved request for `user_id`, who authenticated at `auth_time`: issues
    /// the code (or, for the implicit grant, the access token and/or id_token) and returns the
    /// answer to the client. Fails when the client was revoked meanwhile (`invalid_client`,
    /// shown as a page).
    pub async fn approve_authorization(
        &self,
        request: &ValidatedAuthorization,
        user_id: &str,
        auth_time: DateTime<Utc>,
    ) -> Result<AuthorizationResponse, AuthorizeError> {
        let client = self.registered_client(request).await?;
        if request.response_type == ResponseType::Code {
            let code = random_hex(40)?;
            let now = self.now();
            let mut extensions = request.extensions.clone();
            if request.is_openid() {
                extensions.auth_time = Some(auth_time.timestamp());
            }
            let record = AuthCodeRecord {
                id: sha256_hex(&code),
                user_id: user_id.to_owned(),
                client_id: client.id.clone(),
                scopes: request.scopes.clone(),
                redirect_uri: request.redirect_uri_given.then(|| request.redirect_uri.clone()),
                code_challenge: request.code_challenge.clone(),
                code_challenge_method: request.code_challenge_method,
                extensions,
                revoked: false,
                created_at: now,
                expires_at: now
                    + if self.fapi_applies(&client) {
                        FAPI_AUTH_CODE_TTL
                    } else {
                        AUTH_CODE_TTL
                    },
            };
            self.store().insert_auth_code(&record).await.map_err(OAuthError::from)?;
            return Ok(request.respond(vec![("code", code)]));
        }
        let scopes = self
            .scopes()
            .finalize(request.scopes.clone(), GrantType::Implicit, &client);
        let mut params = Vec::new();
        let mut access_token = None;
        if request.response_type.issues_access_token() {
            let minted = self
                .mint(MintSpec {
                    grant: GrantType::Implicit,
                    client: &client,
                    user_id: Some(user_id.to_owned()),
                    scopes: scopes.clone(),
                    ttl: self.settings().tokens_expire_in,
                    name: None,
                    family: Family::None,
                    with_refresh: false,
                    jkt: None,
                })
                .await?;
            let minted = self.store_minted(minted).await?;
            let expires_in = (minted.access.expires_at - self.now()).num_seconds();
            params.push(("access_token", minted.jwt.clone()));
            params.push(("token_type", "Bearer".to_owned()));
            params.push(("expires_in", expires_in.to_string()));
            if minted.access.scopes != request.scopes {
                params.push(("scope", minted.access.scopes.to_param()));
            }
            access_token = Some(minted.jwt);
        }
        if request.response_type.issues_id_token() {
            let id_token = self
                .issue_id_token(IdTokenSpec {
                    client: &client,
                    user_id,
                    scopes: &scopes,
                    auth_time: auth_time.timestamp(),
                    nonce: request.extensions.nonce.as_deref(),
                    access_token: access_token.as_deref(),
                    // Core §5.4: with no access token the claims go in the id_token.
                    with_user_claims: true,
                })
                .await?;
            params.push(("id_token", id_token));
        }
        Ok(request.respond(params))
    }

    /// The answer for a denied request: `access_denied` with `state`. Fails (shown as a page)
    /// when the client was revoked or dropped the redirect URI meanwhile.
    pub async fn deny_authorization(
        &self,
        request: &ValidatedAuthorization,
    ) -> Result<AuthorizationResponse, AuthorizeError> {
        self.registered_client(request).await?;
        Ok(error_redirect(request, OAuthError::access_denied("The user denied the request")).response)
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

/// Parses `prompt` (OpenID Connect Core §3.1.2.1): known values, each once; `none` only
/// alone ("If this parameter contains none with any other value, an error is returned").
/// Unknown values are ignored.
fn parse_prompt(value: Option<&str>) -> Result<Vec<Prompt>, OAuthError> {
    let mut prompts = Vec::new();
    for prompt in value.unwrap_or_default().split(' ').filter_map(Prompt::parse) {
        if !prompts.contains(&prompt) {
            prompts.push(prompt);
        }
    }
    if prompts.contains(&Prompt::None) && prompts.len() > 1 {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(prompts)
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
            prompt: prompt.into_iter().collect(),
            extensions: AuthorizationExtensions::default(),
            response_mode: None,
            issuer: None,
            login_hint: None,
            id_token_hint_subject: None,
        }
    }

    const GUEST: UserState = UserState {
        signed_in: false,
        prompted_login: false,
        already_granted: false,
        client_skips_consent: false,
        auth_age: Some(0),
        other_user_hinted: false,
    };

    fn error(decision: Decision) -> ErrorCode {
        match decision {
            Decision::Redirect(r) => r.error.code(),
            other => panic!("an error, got {other:?}"),
        }
    }

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
                    r.response
                        .location()
                        .unwrap()
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
        assert_eq!(
            error(decide(&request(Some(Prompt::None)), user)),
            ErrorCode::ConsentRequired
        );
    }

    /// OpenID Connect Core §3.1.2.1 (`max_age`, `id_token_hint`) and §3.1.2.6.
    #[test]
    fn max_age_and_id_token_hint() {
        let mut aged = request(None);
        aged.extensions.max_age = Some(60);
        let granted = UserState {
            signed_in: true,
            already_granted: true,
            ..GUEST
        };
        let old = UserState {
            auth_age: Some(61),
            ..granted
        };
        assert_eq!(
            decide(
                &aged,
                UserState {
                    auth_age: Some(60),
                    ..granted
                }
            ),
            Decision::Approve
        );
        assert_eq!(decide(&aged, old), Decision::Login { force: true });
        assert_eq!(
            decide(
                &aged,
                UserState {
                    auth_age: None,
                    ..granted
                }
            ),
            Decision::Login { force: true }
        );
        assert_eq!(
            decide(
                &aged,
                UserState {
                    prompted_login: true,
                    ..old
                }
            ),
            Decision::Approve
        );
        let mut zero = request(None);
        zero.extensions.max_age = Some(0);
        let just_now = UserState {
            auth_age: Some(0),
            ..granted
        };
        assert_eq!(decide(&zero, just_now), Decision::Login { force: true });
        aged.prompt = vec![Prompt::None];
        assert_eq!(error(decide(&aged, old)), ErrorCode::LoginRequired);

        let hinted = UserState {
            other_user_hinted: true,
            ..granted
        };
        assert_eq!(decide(&request(None), hinted), Decision::Login { force: true });
        let signed_in_again = UserState {
            prompted_login: true,
            ..hinted
        };
        assert_eq!(error(decide(&request(None), signed_in_again)), ErrorCode::LoginRequired);
        assert_eq!(
            error(decide(&request(Some(Prompt::None)), hinted)),
            ErrorCode::LoginRequired
        );
    }

    #[test]
    fn prompt_values() {
        assert_eq!(
            parse_prompt(Some("login consent")).unwrap(),
            [Prompt::Login, Prompt::Consent]
        );
        assert_eq!(
            parse_prompt(Some("select_account weird")).unwrap(),
            [Prompt::SelectAccount]
        );
        assert!(parse_prompt(None).unwrap().is_empty());
        assert_eq!(
            parse_prompt(Some("none login")).unwrap_err().code(),
            ErrorCode::InvalidRequest
        );
        // A consent request stored by the version before reads as before.
        let mut stored = serde_json::to_value(request(None)).unwrap();
        stored["prompt"] = serde_json::json!("login");
        let read: ValidatedAuthorization = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(read.prompt, [Prompt::Login]);
        stored["prompt"] = serde_json::Value::Null;
        stored.as_object_mut().unwrap().remove("issuer");
        let read: ValidatedAuthorization = serde_json::from_value(stored).unwrap();
        assert!(read.prompt.is_empty());
    }

    #[test]
    fn response_types_and_modes() {
        assert_eq!(ResponseType::parse("token id_token"), Some(ResponseType::IdTokenToken));
        assert_eq!(ResponseType::parse("id_token"), Some(ResponseType::IdToken));
        assert_eq!(ResponseType::parse("code id_token"), None);
        assert_eq!(ResponseType::parse("none"), None);
        let mut form_post = request(None);
        form_post.response_mode = Some(ResponseMode::FormPost);
        form_post.issuer = Some("https://id.example".into());
        let answer = form_post.respond(vec![("code", "c".to_owned())]);
        assert_eq!(answer.location(), None);
        assert_eq!(answer.param("iss"), Some("https://id.example"));
        assert_eq!(answer.param("state"), Some("a b&c"));
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
