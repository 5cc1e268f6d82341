//! The rule for names people give things (clients, personal access tokens), in one place: 1 to
//! 255 characters once trimmed (characters, not bytes), and no control or format character
//! anywhere in what was given (Unicode general categories Cc and Cf: a trailing newline is
//! refused, not trimmed away, and so are the bidirectional overrides such as U+202E that make a
//! consent page show a name other than the one registered). Adapters map a
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
    /// Holds a control or format character (Unicode Cc or Cf).
    #[error("the name must not contain control or format characters")]
    ControlCharacters,
}

/// Checks a name and returns it trimmed.
pub fn check_name(name: &str) -> Result<&str, NameError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        Err(NameError::Empty)
    } else if trimmed.chars().count() > MAX_NAME_CHARS {
        Err(NameError::TooLong)
    } else if name.chars().any(is_control_or_format) {
        Err(NameError::ControlCharacters)
    } else {
        Ok(trimmed)
    }
}

/// Unicode general category Cc (controls) or Cf (format: bidirectional overrides, zero-width
/// joiners, soft hyphens, tag characters…).
fn is_control_or_format(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};
    c.is_control() || c.general_category() == GeneralCategory::Format
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
        for format in ['\u{202E}', '\u{200B}', '\u{2066}', '\u{FEFF}', '\u{AD}', '\u{E0041}'] {
            assert_eq!(
                check_name(&format!("Good{format}App")),
                Err(NameError::ControlCharacters),
                "U+{:04X} (Cf)",
                u32::from(format)
            );
        }
        assert_eq!(
            check_name("Café 東京 🚀"),
            Ok("Café 東京 🚀"),
            "letters and symbols of any script"
        );
    }
}
