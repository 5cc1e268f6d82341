//! Scopes: the registry of defined scopes (`tokens_can`), parsing of the space-delimited `scope`
//! parameter, validation, finalization per grant, and the `token_can` check with optional
//! inheritance (`a` satisfies `a:b`).

use indexmap::IndexMap;
use serde::Serialize;

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

/// The scopes a server knows, in definition order, and the defaults.
#[derive(Debug, Clone, Default)]
pub struct ScopeRegistry {
    defined: IndexMap<String, String>,
    defaults: Vec<String>,
    inherited: bool,
}

impl ScopeRegistry {
    pub(crate) fn new(defined: IndexMap<String, String>, defaults: Vec<String>, inherited: bool) -> Self {
        Self {
            defined,
            defaults,
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
    pub fn defaults(&self) -> &[String] {
        &self.defaults
    }

    /// Whether `a` satisfies `a:b`.
    pub fn inherited(&self) -> bool {
        self.inherited
    }

    /// The scopes a request asks for: its `scope` parameter, or the defaults when it names none.
    /// Every scope must be known, else `invalid_scope`.
    pub fn requested(&self, param: Option<&str>) -> Result<Vec<String>, OAuthError> {
        let parsed = parse_scope_param(param);
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
    pub fn finalize(&self, scopes: Vec<String>, grant: GrantType, client: &Client) -> Vec<String> {
        let wildcard_allowed = matches!(
            grant,
            GrantType::Password | GrantType::PersonalAccess | GrantType::ClientCredentials
        );
        scopes
            .into_iter()
            .filter(|s| {
                if s == WILDCARD {
                    return wildcard_allowed;
                }
                self.defined.contains_key(s)
            })
            .filter(|s| match client.allowed_scopes() {
                None => true,
                Some(allowed) => token_can(allowed, s, self.inherited),
            })
            .collect()
    }
}

/// Splits a space-delimited `scope` parameter, dropping empty segments and duplicates.
pub fn parse_scope_param(param: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in param.unwrap_or_default().split([' ', '\t', '\n', '\r']) {
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
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
        let err = reg.requested(Some("read nope")).unwrap_err();
        assert_eq!(err.hint(), Some("Check the `nope` scope"));
        assert_eq!(reg.requested(Some("*")).unwrap(), s(&["*"]));
    }
}
