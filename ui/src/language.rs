//! The languages the screens speak (English, Swedish, German) and how one is chosen from a
//! configured locale tag such as "sv-SE"; English is the fallback for anything else.

use std::fmt;
use std::str::FromStr;

/// A language the screens are translated into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Language {
    #[default]
    English,
    Swedish,
    German,
}

/// The configured language is not one the screens are translated into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the screens speak English (en), Swedish (sv) and German (de), not {0:?}")]
pub struct UnknownLanguage(pub String);

/// Slint could not switch the screens' language (the catalogue is missing from the build).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {0:?} texts are not in this build")]
pub struct LanguageNotBundled(pub Language);

impl Language {
    pub const ALL: [Language; 3] = [Language::English, Language::Swedish, Language::German];

    /// The folder name of the catalogue under `ui/lang/` ("" would also mean English).
    pub fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Swedish => "sv",
            Language::German => "de",
        }
    }

    /// Switches every open screen to this language. Slint requires a component to exist first.
    pub fn select(self) -> Result<(), LanguageNotBundled> {
        slint::select_bundled_translation(self.code()).map_err(|_| LanguageNotBundled(self))
    }
}

impl FromStr for Language {
    type Err = UnknownLanguage;

    /// Accepts a bare language ("sv") or a locale ("sv-SE", "de_AT.UTF-8"), in any case.
    fn from_str(tag: &str) -> Result<Self, Self::Err> {
        let primary = tag
            .split(['-', '_', '.'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match primary.as_str() {
            "en" => Ok(Language::English),
            "sv" => Ok(Language::Swedish),
            "de" => Ok(Language::German),
            _ => Err(UnknownLanguage(tag.chars().take(32).collect())),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(tag: &str, expected: Option<Language>) {
        assert_eq!(tag.parse::<Language>().ok(), expected, "tag {tag:?}");
    }

    #[test]
    fn a_configured_locale_picks_its_language() {
        check("sv", Some(Language::Swedish));
        check("sv-SE", Some(Language::Swedish));
        check("de_AT.UTF-8", Some(Language::German));
        check("EN-gb", Some(Language::English));
        check("fr-FR", None);
        check("", None);
    }
}
