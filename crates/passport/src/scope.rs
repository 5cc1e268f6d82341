//! Scopes: the registry of defined scopes (`tokens_can`), parsing of the space-delimited `scope`
//! parameter, validation, finalization per grant, and the `token_can` check with optional
//! inheritance (`a` satisfies `a:b`).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::client::{Client, GrantType};
use crate::error::OAuthError;

/// The wildcard scope: every check passes. Only password, client-credentials and personal access
/// tokens may keep it.
pub const WILDCARD: &str = "*";

/// A defined scope and its description, as `GET /oauth/scopes` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeDescription {
    /// The scope id, e.g. `orders:read`.
    pub id: String,
    /// What the scope allows, shown on consent pages.
    pub description: String,
}

/// The scopes OpenID Connect defines (Core §5.4), with the descriptions the consent page shows
/// when the configuration does not give its own. Every server defines them (after the
/// configured ones, unless the configuration lists them itself).
pub const OPENID_SCOPES: [(&str, &str); 3] = [
    ("openid", "Sign you in with your account"),
    ("profile", "See your name and profile details"),
    ("email", "See your email address"),
];

/// The scopes a server knows, in definition order, and the defaults.
#[derive(Debug, Clone, Default)]
pub struct ScopeRegistry {
    defined: IndexMap<String, String>,
    defaults: ScopeSet,
    inherited: bool,
}

impl ScopeRegistry {
    /// The configured scopes, then the [`OPENID_SCOPES`] the configuration does not define.
    pub(crate) fn new(mut defined: IndexMap<String, String>, defaults: Vec<String>, inherited: bool) -> Self {
        for (id, description) in OPENID_SCOPES {
            defined.entry(id.to_owned()).or_insert_with(|| description.to_owned());
        }
        Self {
            defined,
            defaults: defaults.into(),
            inherited,
        }
    }

    /// True for a defined scope id and for `*` (Passport's `hasScope`).
    pub fn has_scope(&self, id: &str) -> bool {
        id == WILDCARD || self.defined.contains_key(id)
    }

    /// The defined scope ids, in definition order.
    pub fn scope_ids(&self) -> Vec<&str> {
        self.defined.keys().map(String::as_str).collect()
    }

    /// The defined scopes with their descriptions, in definition order.
    pub fn scopes(&self) -> Vec<ScopeDescription> {
        self.defined
            .iter()
            .map(|(id, description)| ScopeDescription {
                id: id.clone(),
                description: description.clone(),
            })
            .collect()
    }

    /// The defined scopes among `ids`, in the order given (unknown ids and `*` are skipped).
    pub fn scopes_for<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Vec<ScopeDescription> {
        ids.into_iter()
            .filter_map(|id| {
                self.defined.get(id).map(|description| ScopeDescription {
                    id: id.to_owned(),
                    description: description.clone(),
                })
            })
            .collect()
    }

    /// The default scopes, used when a request names none.
    pub fn defaults(&self) -> &ScopeSet {
        &self.defaults
    }

    /// Whether `a` satisfies `a:b`.
    pub fn inherited(&self) -> bool {
        self.inherited
    }

    /// The scopes a request asks for: its `scope` parameter, or the defaults when it names none.
    /// Every scope must be known, else `invalid_scope`.
    pub fn requested(&self, param: Option<&str>) -> Result<ScopeSet, OAuthError> {
        let parsed = ScopeSet::parse(param);
        let scopes = if parsed.is_empty() {
            self.defaults.clone()
        } else {
            parsed
        };
        self.validate(&scopes)?;
        Ok(scopes)
    }

    /// Fails with `invalid_scope` naming the first unknown scope.
    pub fn validate(&self, scopes: &[String]) -> Result<(), OAuthError> {
        match scopes.iter().find(|s| !self.has_scope(s)) {
            Some(unknown) => Err(OAuthError::invalid_scope(unknown)),
            None => Ok(()),
        }
    }

    /// Passport's scope finalization: drop `*` unless the grant may hold it, drop undefined
    /// scopes, and keep only what the client is allowed (when it has a scope list).
    pub fn finalize(&self, scopes: ScopeSet, grant: GrantType, client: &Client) -> ScopeSet {
        let wildcard_allowed = matches!(
            grant,
            GrantType::Password | GrantType::PersonalAccess | GrantType::ClientCredentials
        );
        scopes.retain(|s| {
            let known = if s == WILDCARD {
                wildcard_allowed
            } else {
                self.defined.contains_key(s)
            };
            known
                && match client.allowed_scopes() {
                    None => true,
                    Some(allowed) => token_can(allowed, s, self.inherited),
                }
        })
    }
}

/// Splits a space-delimited `scope` parameter, dropping empty segments and duplicates.
pub fn parse_scope_param(param: Option<&str>) -> ScopeSet {
    ScopeSet::parse(param)
}

/// Whether a token holding `granted` may do `scope`: `*` allows everything; with inheritance a
/// held `a` (or `a:b`) satisfies `a:b:c`.
pub fn token_can(granted: &[String], scope: &str, inherited: bool) -> bool {
    if granted.iter().any(|g| g == WILDCARD || g == scope) {
        return true;
    }
    if !inherited {
        return false;
    }
    let mut prefix = scope;
    while let Some(pos) = prefix.rfind(':') {
        prefix = &prefix[..pos];
        if granted.iter().any(|g| g == prefix) {
            return true;
        }
    }
    false
}

/// A list of scope ids without duplicates or empty ids, in the order first given (RFC 6749
/// §3.3: the `scope` parameter is a space-delimited, order-insensitive list). Compares to
/// string arrays in order; [`ScopeSet::same_scopes`] compares as sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ScopeSet(Vec<String>);

impl ScopeSet {
    /// No scopes.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Parses a `scope` parameter (space, tab or newline separated).
    pub fn parse(param: Option<&str>) -> Self {
        param.unwrap_or_default().split([' ', '\t', '\n', '\r']).collect()
    }

    /// Whether `scope` is in the set (exactly; see [`token_can`] for wildcard and inheritance).
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }

    /// Whether both hold the same scopes, in any order.
    pub fn same_scopes(&self, other: &ScopeSet) -> bool {
        self.0.len() == other.0.len() && self.is_subset_of(other)
    }

    /// The space-delimited form (`scope` parameter and response field).
    pub fn to_param(&self) -> String {
        self.0.join(" ")
    }

    /// The scopes, in order.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Keeps the scopes for which `keep` is true.
    pub fn retain(mut self, mut keep: impl FnMut(&str) -> bool) -> Self {
        self.0.retain(|s| keep(s));
        self
    }

    /// The scopes as a vector.
    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

impl std::ops::Deref for ScopeSet {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl<S: Into<String>> FromIterator<S> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut out: Vec<String> = Vec::new();
        for scope in iter {
            let scope = scope.into();
            if !scope.is_empty() && !out.contains(&scope) {
                out.push(scope);
            }
        }
        Self(out)
    }
}

impl From<Vec<String>> for ScopeSet {
    fn from(scopes: Vec<String>) -> Self {
        scopes.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a ScopeSet {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<String>::deserialize(d)?.into_iter().collect())
    }
}

impl<const N: usize> PartialEq<[&str; N]> for ScopeSet {
    fn eq(&self, other: &[&str; N]) -> bool {
        self.0.len() == N && self.0.iter().zip(other).all(|(a, b)| a == b)
    }
}

impl PartialEq<Vec<String>> for ScopeSet {
    fn eq(&self, other: &Vec<String>) -> bool {
        &self.0 == other
    }
}

impl PartialEq<[String]> for ScopeSet {
    fn eq(&self, other: &[String]) -> bool {
        self.0 == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn parse_drops_empty_and_duplicate_segments() {
        assert_eq!(parse_scope_param(Some("  a b  a\tc ")), s(&["a", "b", "c"]));
        assert!(parse_scope_param(None).is_empty());
    }

    #[test]
    fn token_can_honours_wildcard_and_inheritance() {
        assert!(token_can(&s(&["*"]), "x", false));
        assert!(token_can(&s(&["a"]), "a", false));
        assert!(!token_can(&s(&["a"]), "a:b", false));
        assert!(token_can(&s(&["a"]), "a:b:c", true));
        assert!(token_can(&s(&["a:b"]), "a:b:c", true));
        assert!(!token_can(&s(&["a:b"]), "a", true));
        assert!(!token_can(&s(&["ab"]), "a:b", true));
    }

    #[test]
    fn requested_uses_defaults_and_rejects_unknown() {
        let mut defined = IndexMap::new();
        defined.insert("read".to_owned(), "Read".to_owned());
        let reg = ScopeRegistry::new(defined, s(&["read"]), false);
        assert_eq!(reg.requested(None).unwrap(), s(&["read"]));
        assert_eq!(reg.requested(Some(" ")).unwrap(), s(&["read"]));
        assert_eq!(
            reg.scope_ids(),
            ["read", "openid", "profile", "email"],
            "built in, after ours"
        );
        let err = reg.requested(Some("read nope")).unwrap_err();
        assert_eq!(err.hint(), Some("Check the `nope` scope"));
        assert_eq!(reg.requested(Some("*")).unwrap(), s(&["*"]));
    }

    #[test]
    fn the_configuration_may_describe_the_openid_scopes() {
        let mut defined = IndexMap::new();
        defined.insert("email".to_owned(), "Your work address".to_owned());
        defined.insert("read".to_owned(), "Read".to_owned());
        let reg = ScopeRegistry::new(defined, Vec::new(), false);
        assert_eq!(reg.scope_ids(), ["email", "read", "openid", "profile"]);
        assert_eq!(reg.scopes_for(["email"])[0].description, "Your work address");
    }
}
