//! The GS1 Application Identifier table: `ais.txt` (data, one line per AI or range) read once
//! into `AiSpec`s. The file is compiled in, and the tests read every line of it, so a mistake in
//! it fails the build's tests instead of a scan at the till.

use std::collections::HashMap;
use std::sync::LazyLock;

const AIS: &str = include_str!("ais.txt");

/// The GS1 General Specifications' table of element strings with a predefined length, by the
/// first two digits of the AI: (prefix, length of AI plus value). It is fixed for all time, so it
/// covers prefixes with no AI assigned yet (04, 14, 18, 19, ...): a parser can step over an AI
/// it does not know there. Every other AI needs FNC1 after its value unless it ends the data.
pub const PREDEFINED_LENGTHS: &[(&str, usize)] = &[
    ("00", 20),
    ("01", 16),
    ("02", 16),
    ("03", 16),
    ("04", 18),
    ("11", 8),
    ("12", 8),
    ("13", 8),
    ("14", 8),
    ("15", 8),
    ("16", 8),
    ("17", 8),
    ("18", 8),
    ("19", 8),
    ("20", 4),
    ("31", 10),
    ("32", 10),
    ("33", 10),
    ("34", 10),
    ("35", 10),
    ("36", 10),
    ("41", 16),
];

/// The predefined length (AI plus value) for data starting with `prefix`'s two digits, if any.
pub fn predefined_length(data: &[u8]) -> Option<usize> {
    let two = data.get(..2)?;
    PREDEFINED_LENGTHS
        .iter()
        .find(|(p, _)| p.as_bytes() == two)
        .map(|&(_, n)| n)
}

/// A character set of the GS1 General Specifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharSet {
    /// `N`: digits.
    Numeric,
    /// `X`: GS1 AI encodable character set 82.
    Cset82,
    /// `Y`: GS1 AI encodable character set 39.
    Cset39,
    /// `Z`: GS1 AI encodable character set 64 (file-safe / URI-safe base64, `=` padding).
    Cset64,
}

impl CharSet {
    /// The characters of the set, in GS1's order (set 82's order is also what the alphanumeric
    /// check character pair computes with).
    pub fn characters(self) -> &'static str {
        match self {
            CharSet::Numeric => "0123456789",
            CharSet::Cset82 => {
                "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
            }
            CharSet::Cset39 => "#-/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            CharSet::Cset64 => "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz",
        }
    }

    pub fn contains(self, b: u8) -> bool {
        self.characters().as_bytes().contains(&b)
    }
}

/// One component of an AI's value, e.g. the `N6 yymmdd` of (8008)'s `N6 yymmdd + N2 hh`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub charset: CharSet,
    /// Shortest and longest length; equal for a fixed-length component.
    pub min: usize,
    pub max: usize,
    /// May be left out (only at the end of the value).
    pub optional: bool,
    /// Names of the GS1 syntax tests that apply, e.g. `csum`, `yymmd0`.
    pub rules: Vec<&'static str>,
}

/// One Application Identifier as the table describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiSpec {
    pub ai: String,
    /// Predefined length: no FNC1 needed after the value.
    pub predefined: bool,
    pub components: Vec<Component>,
    pub title: &'static str,
}

impl AiSpec {
    /// The value's length if it can have only one.
    pub fn fixed_length(&self) -> Option<usize> {
        self.components.iter().try_fold(0, |n, c| {
            (c.min == c.max && !c.optional).then_some(n + c.max)
        })
    }

    /// The longest value allowed.
    pub fn max_length(&self) -> usize {
        self.components.iter().map(|c| c.max).sum()
    }
}

struct Table {
    specs: Vec<AiSpec>,
    by_ai: HashMap<String, usize>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let specs = parse_table(AIS).unwrap_or_else(|e| panic!("gs1/ais.txt: {e}"));
    let by_ai = specs
        .iter()
        .enumerate()
        .map(|(i, s)| (s.ai.clone(), i))
        .collect();
    Table { specs, by_ai }
});

/// Every AI in the table, in the table's (lexical) order.
pub fn ai_specs() -> &'static [AiSpec] {
    &TABLE.specs
}

/// The AI at the start of `data` (AIs are prefix-free: no AI starts another), if it is one.
pub fn identify(data: &[u8]) -> Option<&'static AiSpec> {
    (2..=4).find_map(|n| {
        let ai = std::str::from_utf8(data.get(..n)?).ok()?;
        TABLE.by_ai.get(ai).map(|&i| &TABLE.specs[i])
    })
}

/// The table entry for exactly `ai`.
pub fn ai_spec(ai: &str) -> Option<&'static AiSpec> {
    TABLE.by_ai.get(ai).map(|&i| &TABLE.specs[i])
}

fn parse_table(text: &'static str) -> Result<Vec<AiSpec>, String> {
    let mut specs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |e: String| format!("line {}: {e}", n + 1);
        let cols: Vec<&'static str> = line.split('|').map(str::trim).collect();
        let [ais, end, format, title] = cols[..] else {
            return Err(at(format!("expected 4 columns in {line:?}")));
        };
        let predefined = match end {
            "fixed" => true,
            "fnc1" => false,
            other => return Err(at(format!("end must be fixed or fnc1, not {other:?}"))),
        };
        let components = format
            .split(" + ")
            .map(parse_component)
            .collect::<Result<Vec<_>, _>>()
            .map_err(at)?;
        for ai in expand(ais).map_err(at)? {
            specs.push(AiSpec {
                ai,
                predefined,
                components: components.clone(),
                title,
            });
        }
    }
    Ok(specs)
}

/// `3100-3105` as its six AIs; `17` as itself.
fn expand(ais: &str) -> Result<Vec<String>, String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match ais.split_once('-') {
        None if digits(ais) && (2..=4).contains(&ais.len()) => Ok(vec![ais.to_owned()]),
        Some((a, b))
            if digits(a) && digits(b) && a.len() == b.len() && (2..=4).contains(&a.len()) =>
        {
            let (a, b): (u32, u32) = (a.parse().map_err(|_| ais)?, b.parse().map_err(|_| ais)?);
            if a > b {
                return Err(format!("empty AI range {ais}"));
            }
            let width = ais.len() / 2;
            Ok((a..=b).map(|ai| format!("{ai:0width$}")).collect())
        }
        _ => Err(format!("bad AI {ais:?}")),
    }
}

/// `N6 yymmdd`, `X..20`, `[N2 mi]`.
fn parse_component(text: &'static str) -> Result<Component, String> {
    let (optional, text) = match text.strip_prefix('[') {
        Some(inner) => (
            true,
            inner
                .strip_suffix(']')
                .ok_or_else(|| format!("unclosed [ in {text:?}"))?,
        ),
        None => (false, text),
    };
    let mut words = text.split_whitespace();
    let kind = words.next().ok_or("empty component")?;
    let charset = match kind.as_bytes().first() {
        Some(b'N') => CharSet::Numeric,
        Some(b'X') => CharSet::Cset82,
        Some(b'Y') => CharSet::Cset39,
        Some(b'Z') => CharSet::Cset64,
        _ => return Err(format!("bad component type {kind:?}")),
    };
    let length = &kind[1..];
    let (min, max) = match length.strip_prefix("..") {
        Some(max) => (1, max),
        None => (length.len(), length),
    };
    let max: usize = max.parse().map_err(|_| format!("bad length in {kind:?}"))?;
    let min = if length.starts_with("..") { min } else { max };
    if max == 0 {
        return Err(format!("zero length in {kind:?}"));
    }
    Ok(Component {
        charset,
        min,
        max,
        optional,
        rules: words.collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reads_whole_and_holds_every_ai_once() {
        let specs = parse_table(AIS).expect("ais.txt reads");
        let mut seen = std::collections::HashSet::new();
        for spec in &specs {
            assert!(seen.insert(spec.ai.clone()), "({}) twice", spec.ai);
        }
        // 4 + 6 dates + variant + ... : the count only moves when GS1 assigns or withdraws AIs.
        assert_eq!(specs.len(), 541, "AIs in ais.txt");
    }

    #[test]
    fn no_ai_is_the_start_of_another() {
        for a in ai_specs() {
            for b in ai_specs() {
                assert!(
                    a.ai == b.ai || !b.ai.starts_with(&a.ai),
                    "({}) starts ({})",
                    a.ai,
                    b.ai
                );
            }
        }
    }

    #[test]
    fn fixed_ais_are_exactly_those_of_the_predefined_length_table() {
        for spec in ai_specs() {
            let predefined = predefined_length(spec.ai.as_bytes());
            assert_eq!(
                spec.predefined,
                predefined.is_some(),
                "({}) end column disagrees with the predefined-length table",
                spec.ai
            );
            if let Some(total) = predefined {
                assert_eq!(
                    spec.fixed_length().map(|n| n + spec.ai.len()),
                    Some(total),
                    "({}) length",
                    spec.ai
                );
            }
        }
    }

    #[test]
    fn only_the_last_component_varies_and_no_mandatory_one_follows_an_optional_one() {
        for spec in ai_specs() {
            let n = spec.components.len();
            for (i, c) in spec.components.iter().enumerate() {
                assert!(c.min == c.max || i == n - 1, "({}) component {i}", spec.ai);
                if i > 0 && spec.components[i - 1].optional {
                    assert!(c.optional, "({}) component {i}", spec.ai);
                }
            }
        }
    }

    #[test]
    fn character_sets_have_their_sizes() {
        assert_eq!(CharSet::Cset82.characters().len(), 82);
        assert_eq!(CharSet::Cset39.characters().len(), 39);
        assert_eq!(CharSet::Cset64.characters().len(), 64);
    }

    #[test]
    fn ranges_and_components_read_as_written() {
        assert_eq!(expand("3100-3102").unwrap(), ["3100", "3101", "3102"]);
        assert!(expand("31-3").is_err());
        assert_eq!(
            parse_component("[N2 mi]").unwrap(),
            Component {
                charset: CharSet::Numeric,
                min: 2,
                max: 2,
                optional: true,
                rules: vec!["mi"]
            }
        );
        let x = parse_component("X..20").unwrap();
        assert_eq!(
            (x.charset, x.min, x.max, x.optional),
            (CharSet::Cset82, 1, 20, false)
        );
        assert!(parse_component("Q5").is_err());
        assert!(parse_table("01 | fixed | N14").is_err());
        assert!(parse_table("01 | maybe | N14 | GTIN").is_err());
    }
}
