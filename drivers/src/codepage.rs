//! Text to single-byte code page PC858 for the customer display and the receipt printer.
//! Both devices print one byte per cell and would show mojibake (or obey a control code) if sent
//! UTF-8, so every character becomes exactly one printable byte: mapped, transliterated, or '?'.

/// `ESC t n` table number that selects PC858 (multilingual Latin-1 with €) on Epson-compatible
/// printers and displays. PC858 is chosen over PC850/PC437 because it is the common table that has
/// both the Nordic letters and the euro sign.
pub const PC858_TABLE: u8 = 19;

/// Characters 0x80..=0xFF of PC858, in order. `None` marks box-drawing cells we never emit.
const PC858_HIGH: [Option<char>; 128] = {
    const N: Option<char> = None;
    [
        // 0x80
        Some('Ç'),
        Some('ü'),
        Some('é'),
        Some('â'),
        Some('ä'),
        Some('à'),
        Some('å'),
        Some('ç'),
        Some('ê'),
        Some('ë'),
        Some('è'),
        Some('ï'),
        Some('î'),
        Some('ì'),
        Some('Ä'),
        Some('Å'),
        // 0x90
        Some('É'),
        Some('æ'),
        Some('Æ'),
        Some('ô'),
        Some('ö'),
        Some('ò'),
        Some('û'),
        Some('ù'),
        Some('ÿ'),
        Some('Ö'),
        Some('Ü'),
        Some('ø'),
        Some('£'),
        Some('Ø'),
        Some('×'),
        Some('ƒ'),
        // 0xA0
        Some('á'),
        Some('í'),
        Some('ó'),
        Some('ú'),
        Some('ñ'),
        Some('Ñ'),
        Some('ª'),
        Some('º'),
        Some('¿'),
        Some('®'),
        Some('¬'),
        Some('½'),
        Some('¼'),
        Some('¡'),
        Some('«'),
        Some('»'),
        // 0xB0
        N,
        N,
        N,
        N,
        N,
        Some('Á'),
        Some('Â'),
        Some('À'),
        Some('©'),
        N,
        N,
        N,
        N,
        Some('¢'),
        Some('¥'),
        N,
        // 0xC0
        N,
        N,
        N,
        N,
        N,
        N,
        Some('ã'),
        Some('Ã'),
        N,
        N,
        N,
        N,
        N,
        N,
        N,
        Some('¤'),
        // 0xD0
        Some('ð'),
        Some('Ð'),
        Some('Ê'),
        Some('Ë'),
        Some('È'),
        Some('€'),
        Some('Í'),
        Some('Î'),
        Some('Ï'),
        N,
        N,
        N,
        N,
        Some('¦'),
        Some('Ì'),
        N,
        // 0xE0
        Some('Ó'),
        Some('ß'),
        Some('Ô'),
        Some('Ò'),
        Some('õ'),
        Some('Õ'),
        Some('µ'),
        Some('þ'),
        Some('Þ'),
        Some('Ú'),
        Some('Û'),
        Some('Ù'),
        Some('ý'),
        Some('Ý'),
        Some('¯'),
        Some('´'),
        // 0xF0
        N,
        Some('±'),
        N,
        Some('¾'),
        Some('¶'),
        Some('§'),
        Some('÷'),
        Some('¸'),
        Some('°'),
        Some('¨'),
        Some('·'),
        Some('¹'),
        Some('³'),
        Some('²'),
        N,
        N,
    ]
};

/// Byte for one character, or `None` when PC858 has no such cell.
fn pc858_byte(c: char) -> Option<u8> {
    if (' '..='~').contains(&c) {
        return Some(c as u8);
    }
    if c == '\u{a0}' {
        return Some(b' ');
    }
    PC858_HIGH
        .iter()
        .position(|&cell| cell == Some(c))
        .and_then(|i| u8::try_from(0x80 + i).ok())
}

/// Closest plain-ASCII spelling for characters PC858 lacks (Central European letters, typographic
/// punctuation). Anything else becomes '?', so a strange product name costs one cell, never the line.
pub fn transliterate(c: char) -> char {
    match c {
        'ā' | 'ă' | 'ą' => 'a',
        'Ā' | 'Ă' | 'Ą' => 'A',
        'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'Ć' | 'Ĉ' | 'Ċ' | 'Č' => 'C',
        'ď' | 'đ' => 'd',
        'Ď' => 'D',
        'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => 'E',
        'ğ' | 'ġ' | 'ģ' => 'g',
        'Ğ' | 'Ġ' | 'Ģ' => 'G',
        'ī' | 'į' | 'ı' => 'i',
        'Ī' | 'Į' | 'İ' => 'I',
        'ķ' => 'k',
        'Ķ' => 'K',
        'ĺ' | 'ļ' | 'ľ' | 'ł' => 'l',
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ł' => 'L',
        'ń' | 'ņ' | 'ň' => 'n',
        'Ń' | 'Ņ' | 'Ň' => 'N',
        'ō' | 'ő' => 'o',
        'Ō' | 'Ő' => 'O',
        'œ' => 'o',
        'Œ' => 'O',
        'ŕ' | 'ř' => 'r',
        'Ŕ' | 'Ř' => 'R',
        'ś' | 'ş' | 'š' | 'ș' => 's',
        'Ś' | 'Ş' | 'Š' | 'Ș' => 'S',
        'ţ' | 'ť' | 'ț' => 't',
        'Ţ' | 'Ť' | 'Ț' => 'T',
        'ū' | 'ů' | 'ű' | 'ų' => 'u',
        'Ū' | 'Ů' | 'Ű' | 'Ų' => 'U',
        'ź' | 'ż' | 'ž' => 'z',
        'Ź' | 'Ż' | 'Ž' => 'Z',
        'Ÿ' => 'Y',
        '‘' | '’' | '‚' | '′' => '\'',
        '“' | '”' | '„' | '″' => '"',
        '–' | '—' | '‐' | '‑' | '−' => '-',
        '…' => '.',
        '•' => '*',
        '\u{2009}' | '\u{202f}' | '\t' => ' ',
        _ => '?',
    }
}

/// One printable PC858 byte for every `char` of `text` (so cell counting by `chars()` holds).
/// Control characters are replaced too: display text must never smuggle in a command byte.
pub fn encode_pc858(text: &str) -> Vec<u8> {
    text.chars().map(encode_char).collect()
}

/// One printable PC858 byte for `c`, transliterating when the code page lacks it.
pub fn encode_char(c: char) -> u8 {
    pc858_byte(c)
        .or_else(|| pc858_byte(transliterate(c)))
        .unwrap_or(b'?')
}

/// The character a PC858 byte shows (for simulators and tests); control bytes give `None`.
pub fn decode_pc858(byte: u8) -> Option<char> {
    match byte {
        0x20..=0x7e => Some(byte as char),
        0x80..=0xff => PC858_HIGH[usize::from(byte - 0x80)],
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &[u8]) {
        assert_eq!(encode_pc858(input), expected, "encoding {input:?}");
    }

    #[test]
    fn nordic_letters_and_euro_map_to_their_pc858_cells() {
        check(
            "å ä ö ü é €",
            &[
                0x86, 0x20, 0x84, 0x20, 0x94, 0x20, 0x81, 0x20, 0x82, 0x20, 0xd5,
            ],
        );
        check("ÅÄÖ", &[0x8f, 0x8e, 0x99]);
        check("Kaffe 25,00 kr", b"Kaffe 25,00 kr");
    }

    #[test]
    fn characters_missing_from_pc858_are_transliterated() {
        check("Łódź", b"L\xa2dz");
        check("Škoda – “ok”", b"Skoda - \"ok\"");
        check("漢", b"?");
    }

    #[test]
    fn control_characters_never_reach_the_device() {
        check("a\x1b@b\x0cc", b"a?@b?c");
    }

    #[test]
    fn every_mapped_cell_round_trips() {
        for b in 0x20..=0xffu8 {
            if let Some(c) = decode_pc858(b) {
                assert_eq!(encode_char(c), b, "cell {b:#x} ({c})");
            }
        }
    }
}
