//! The rule for names people give things (clients, personal access tokens), in one place: 1 to
//! 255 characters once trimmed (characters, not bytes), and no control character anywhere in
//! what was given (a trailing newline too is refused, not trimmed away). Adapters map a
//! [`NameError`] to their own shape: `invalid_request` from the core, a 422 field error in the
//! JSON API.

/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 255;

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Empty, or only white space.
    #[error("the name must not be empty")]
    Empty,
    /// Longer than [`MAX_NAME_CHARS`] characters.
    #[error("the name must be at most 255 characters")]
    TooLong,
    /// Holds a control character.
    #[error("the name must not contain control characters")]
    ControlCharacters,
}

/// Checks a name and returns it trimmed.
pub fn check_name(name: &str) -> Result<&str, NameError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        Err(NameError::Empty)
    } else if trimmed.chars().count() > MAX_NAME_CHARS {
        Err(NameError::TooLong)
    } else if name.chars().any(char::is_control) {
        Err(NameError::ControlCharacters)
    } else {
        Ok(trimmed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_counted_in_characters_and_free_of_controls() {
        assert_eq!(check_name("  Acme  "), Ok("Acme"));
        assert_eq!(check_name(&"é".repeat(255)).map(str::len), Ok(510));
        assert_eq!(check_name(&"a".repeat(256)), Err(NameError::TooLong));
        assert_eq!(check_name(" \t "), Err(NameError::Empty));
        assert_eq!(check_name("a\u{7}b"), Err(NameError::ControlCharacters));
        assert_eq!(
            check_name("Acme\n"),
            Err(NameError::ControlCharacters),
            "not trimmed away"
        );
    }
}
