//! Evasion-resistant text normalisation with an exact map back to the original bytes.
//!
//! Content scanning (PII detection and masking) runs its regexes and word lists over
//! *normalised* text, so that trivial evasions (zero-width characters, full-width or
//! mathematical letters, foreign digits, Cyrillic look-alikes, …) are still caught, and then
//! maps every match back to the *original* bytes, so that masking replaces exactly what the
//! client sent. Patterns and word lists must be written in normalised form (ASCII letters and
//! digits, `-`, single spaces): a keyword containing a Cyrillic `а` never matches, because
//! that letter is folded to `a` in the scanned text (running a keyword through [`normalize`]
//! gives its normalised form).
//!
//! # Per-character rule
//!
//! Normalisation is strictly per character: every original `char` maps to zero or more
//! normalised bytes and nothing ever composes across characters. That makes it incremental:
//! pushing text piece by piece (split anywhere on char boundaries) gives exactly the same
//! result as normalising the concatenation. For one character `c` ([`normalize_char`]):
//!
//! 1. **Invisible characters are dropped**: general category `Cf` (soft hyphen, zero-width
//!    space/joiners, bidi controls, word joiner and invisible operators, BOM, interlinear
//!    annotation, Arabic number signs, tag characters, …) plus the rest of
//!    `Default_Ignorable_Code_Point` (U+034F combining grapheme joiner, Hangul fillers U+115F,
//!    U+1160, U+3164, U+FFA0, variation selectors, reserved U+2065, U+FFF0..U+FFF8 and
//!    U+E0000..U+E0FFF).
//! 2. **Combining marks are dropped** (`unicode_normalization::char::is_combining_mark`,
//!    i.e. general category `M` = `Mn | Mc | Me`), so `a\u{301}lice` matches `alice`. This
//!    also removes the spacing vowel signs of Indic scripts and the like; it only affects what
//!    the matchers see, never what is forwarded. Precomposed letters (`é`) are kept.
//! 3. **Decimal digits of every script** (general category `Nd`) are folded by value to ASCII
//!    `0`–`9`: `٠١٢٣` → `0123`, `१२` → `12`, `１３８` → `138`, `𝟏𝟐𝟑` → `123`.
//! 4. **NFKC of the single character**: `＠` → `@`, `ｅ` → `e`, `𝐚` → `a`, `ﬁ` → `fi`,
//!    `①` → `1`, `²` → `2`, `㎒` → `MHz`, U+00A0 → ` `. Characters whose NFKC quick check
//!    says `Yes` skip the NFKC call.
//! 5. **Look-alike folding** to ASCII: Cyrillic `а е о р с у х ѕ і ј һ ӏ ԁ ԛ ԝ`,
//!    `А В Е К М Н О Р С Т Х Ѕ І Ј Ү Һ Ӏ Ԛ Ԝ`, Greek `ι κ ν ο ρ υ`,
//!    `Α Β Ε Ζ Η Ι Κ Μ Ν Ο Ρ Τ Υ Χ` and Armenian `օ` to the Latin letter they look like, every
//!    space separator (`Zs`) to U+0020, and dash-like characters (U+2010..U+2015, U+2212 minus,
//!    U+FE63, U+FF0D, …) to `-` (the exact list is on the private `fold_confusable`). This
//!    is a deliberate, small subset of UTS #39 confusables aimed at what PII detectors look at
//!    (e-mail addresses, phone numbers, identifiers); UTS #39 skeletons are *not* computed.
//!
//! Steps 1, 2, 3 and 5 are applied again to every character produced by NFKC (e.g.
//! U+1D6B6 MATHEMATICAL BOLD CAPITAL OMICRON → `Ο` → `O`, `¨` → ` \u{308}` → ` `), so the
//! mapping is idempotent: every character of the output normalises to itself, which a test
//! checks exhaustively over all of Unicode. Case is **not** folded (matchers do ASCII
//! case-insensitivity per rule), and nothing is decoded (no HTML entities, percent-encoding,
//! Base64, tag-character "ASCII smuggling" …): input is already JSON-decoded text.
//!
//! The `Cf`, `Default_Ignorable_Code_Point` and `Nd` tables below are from UCD 16.0 (the
//! version of the `regex-syntax` 0.8 tables); NFKC and the mark property come from
//! `unicode-normalization` (UCD 18.0 in 0.1.26). Characters first assigned in Unicode 17 or
//! later are therefore never dropped or digit-folded by steps 1 and 3.
//!
//! # Offset map
//!
//! [`Normalized`] keeps the normalised text and a map from normalised byte offsets to the
//! original bytes. While nothing has changed (pure ASCII, Chinese ideographs, kana, Hangul,
//! precomposed accented letters, …) it keeps no map at all: the original *is* the normalised
//! text. The first time a character changes or is dropped the map is materialised as a short
//! list of *runs* (12 bytes each) rather than one entry per byte:
//!
//! * an **identity run** covers consecutive characters copied unchanged (any mix of widths:
//!   the normalised bytes equal the original bytes), so ASCII after an em dash is still a
//!   plain copy;
//! * a **uniform run** covers consecutive changed characters that each took `olen` original
//!   bytes and produced `nlen` normalised bytes (e.g. a word of full-width letters, 3 → 1);
//! * **dropped characters** are not stored: they are the gaps between the original extent of
//!   one run and the start of the next (or the end of the original text).
//!
//! Lookups are a binary search over runs plus arithmetic. Offsets inside the map are `u32`
//! relative to the current front (rebased by [`Normalized::drain_front`], which a streaming
//! scanner uses to keep only a tail window). Should a run ever start beyond `u32::MAX`
//! (more than 4 GiB since the last clear/drain) the map degrades *conservatively*: the whole
//! buffer becomes one unit whose span is the whole original text, so masking over-masks
//! rather than under-masks.
//!
//! # Cost
//!
//! A pure-ASCII [`Normalized::push_str`] is `str::is_ascii` plus a `memcpy` (about 0.1 µs for
//! 4 KiB), whether or not a map exists. In mixed text, ASCII stretches are skipped 16 bytes at
//! a time. Every BMP character is classified by one lookup in a 64 KiB table built once per
//! process on first non-ASCII use (about 1.5 ms); other characters take a few hash and
//! binary-search lookups, and only characters with a compatibility decomposition run NFKC.
//! Roughly 1–3 ns per byte for CJK, Cyrillic or full-width text. Nothing allocates per
//! character.

use std::sync::OnceLock;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// Characters that are invisible and dropped: general category `Cf` united with
/// `Default_Ignorable_Code_Point` (UCD 16.0), as sorted, non-overlapping inclusive ranges.
/// (`Mn` members of `Default_Ignorable_Code_Point`, such as variation selectors, are listed
/// too although step 2 would drop them anyway.)
const IGNORABLE: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),   // SOFT HYPHEN
    (0x034F, 0x034F),   // COMBINING GRAPHEME JOINER
    (0x0600, 0x0605),   // ARABIC NUMBER SIGN .. ARABIC NUMBER MARK ABOVE
    (0x061C, 0x061C),   // ARABIC LETTER MARK
    (0x06DD, 0x06DD),   // ARABIC END OF AYAH
    (0x070F, 0x070F),   // SYRIAC ABBREVIATION MARK
    (0x0890, 0x0891),   // ARABIC POUND/PIASTRE MARK ABOVE
    (0x08E2, 0x08E2),   // ARABIC DISPUTED END OF AYAH
    (0x115F, 0x1160),   // HANGUL CHOSEONG/JUNGSEONG FILLER
    (0x17B4, 0x17B5),   // KHMER VOWEL INHERENT AQ/AA
    (0x180B, 0x180F),   // MONGOLIAN FREE VARIATION SELECTORS, VOWEL SEPARATOR
    (0x200B, 0x200F),   // ZWSP, ZWNJ, ZWJ, LRM, RLM
    (0x202A, 0x202E),   // bidi embeddings and overrides
    (0x2060, 0x206F),   // WORD JOINER, invisible operators, bidi isolates, deprecated
    (0x3164, 0x3164),   // HANGUL FILLER
    (0xFE00, 0xFE0F),   // VARIATION SELECTORS 1-16
    (0xFEFF, 0xFEFF),   // ZERO WIDTH NO-BREAK SPACE (BOM)
    (0xFFA0, 0xFFA0),   // HALFWIDTH HANGUL FILLER
    (0xFFF0, 0xFFFB),   // reserved, INTERLINEAR ANNOTATION ANCHOR/SEPARATOR/TERMINATOR
    (0x110BD, 0x110BD), // KAITHI NUMBER SIGN
    (0x110CD, 0x110CD), // KAITHI NUMBER SIGN ABOVE
    (0x13430, 0x1343F), // EGYPTIAN HIEROGLYPH format controls
    (0x1BCA0, 0x1BCA3), // SHORTHAND FORMAT controls
    (0x1D173, 0x1D17A), // MUSICAL SYMBOL BEGIN/END BEAM, TIE, SLUR, PHRASE
    (0xE0000, 0xE0FFF), // tags (U+E0001, U+E0020..U+E007F), variation selectors 17-256
];

/// Code point of the digit zero of every run of ten decimal digits (general category `Nd`,
/// UCD 16.0) other than ASCII, sorted. Digit value = `c - zero`.
const DIGIT_ZEROS: &[u32] = &[
    0x0660,  // ARABIC-INDIC
    0x06F0,  // EXTENDED ARABIC-INDIC
    0x07C0,  // NKO
    0x0966,  // DEVANAGARI
    0x09E6,  // BENGALI
    0x0A66,  // GURMUKHI
    0x0AE6,  // GUJARATI
    0x0B66,  // ORIYA
    0x0BE6,  // TAMIL
    0x0C66,  // TELUGU
    0x0CE6,  // KANNADA
    0x0D66,  // MALAYALAM
    0x0DE6,  // SINHALA LITH
    0x0E50,  // THAI
    0x0ED0,  // LAO
    0x0F20,  // TIBETAN
    0x1040,  // MYANMAR
    0x1090,  // MYANMAR SHAN
    0x17E0,  // KHMER
    0x1810,  // MONGOLIAN
    0x1946,  // LIMBU
    0x19D0,  // NEW TAI LUE
    0x1A80,  // TAI THAM HORA
    0x1A90,  // TAI THAM THAM
    0x1B50,  // BALINESE
    0x1BB0,  // SUNDANESE
    0x1C40,  // LEPCHA
    0x1C50,  // OL CHIKI
    0xA620,  // VAI
    0xA8D0,  // SAURASHTRA
    0xA900,  // KAYAH LI
    0xA9D0,  // JAVANESE
    0xA9F0,  // MYANMAR TAI LAING
    0xAA50,  // CHAM
    0xABF0,  // MEETEI MAYEK
    0xFF10,  // FULLWIDTH
    0x104A0, // OSMANYA
    0x10D30, // HANIFI ROHINGYA
    0x10D40, // GARAY
    0x11066, // BRAHMI
    0x110F0, // SORA SOMPENG
    0x11136, // CHAKMA
    0x111D0, // SHARADA
    0x112F0, // KHUDAWADI
    0x11450, // NEWA
    0x114D0, // TIRHUTA
    0x11650, // MODI
    0x116C0, // TAKRI
    0x116D0, // MYANMAR PAO
    0x116DA, // MYANMAR EASTERN PWO KAREN
    0x11730, // AHOM
    0x118E0, // WARANG CITI
    0x11950, // DIVES AKURU
    0x11BF0, // SUNUWAR
    0x11C50, // BHAIKSUKI
    0x11D50, // MASARAM GONDI
    0x11DA0, // GUNJALA GONDI
    0x11F50, // KAWI
    0x16130, // GURUNG KHEMA
    0x16A60, // MRO
    0x16AC0, // TANGSA
    0x16B50, // PAHAWH HMONG
    0x16D70, // KIRAT RAI
    0x1CCF0, // OUTLINED
    0x1D7CE, // MATHEMATICAL BOLD
    0x1D7D8, // MATHEMATICAL DOUBLE-STRUCK
    0x1D7E2, // MATHEMATICAL SANS-SERIF
    0x1D7EC, // MATHEMATICAL SANS-SERIF BOLD
    0x1D7F6, // MATHEMATICAL MONOSPACE
    0x1E140, // NYIAKENG PUACHUE HMONG
    0x1E2F0, // WANCHO
    0x1E4F0, // NAG MUNDARI
    0x1E5F1, // OL ONAL
    0x1E950, // ADLAM
    0x1FBF0, // SEGMENTED
];

/// True for characters dropped by step 1 (see [`IGNORABLE`]).
fn is_ignorable(c: char) -> bool {
    let cp = u32::from(c);
    if cp < 0xAD {
        return false;
    }
    let i = IGNORABLE.partition_point(|&(lo, _)| lo <= cp);
    i > 0 && IGNORABLE.get(i - 1).is_some_and(|&(_, hi)| cp <= hi)
}

/// ASCII digit for a non-ASCII decimal digit (step 3).
fn fold_digit(c: char) -> Option<char> {
    let cp = u32::from(c);
    if cp < 0x660 {
        return None;
    }
    let i = DIGIT_ZEROS.partition_point(|&z| z <= cp);
    let zero = *DIGIT_ZEROS.get(i.checked_sub(1)?)?;
    let value = u8::try_from(cp - zero).ok().filter(|&v| v < 10)?;
    Some(char::from(b'0' + value))
}

/// The look-alike folding of step 5: ASCII replacement for a character, if any.
///
/// Covered, and nothing else:
/// * space separators (`Zs`): U+00A0, U+1680, U+2000..U+200A, U+202F, U+205F, U+3000 → ` `;
/// * dashes: U+02D7, U+058A, U+2010..U+2015, U+2043, U+2212, U+2796, U+2E3A, U+2E3B, U+FE58,
///   U+FE63, U+FF0D → `-` (U+2011, U+FE31, U+FE32, U+FE58, U+FE63, U+FF0D also reach a
///   listed dash or `-` through NFKC);
/// * Cyrillic lower case `а е о р с у х ѕ і ј һ ӏ ԁ ԛ ԝ` → `a e o p c y x s i j h l d q w`;
/// * Cyrillic upper case `А В Е К М Н О Р С Т Х Ѕ І Ј Ү Һ Ӏ Ԛ Ԝ` →
///   `A B E K M H O P C T X S I J Y H I Q W`;
/// * Greek lower case `ι κ ν ο ρ υ` → `i k v o p u`;
/// * Greek upper case `Α Β Ε Ζ Η Ι Κ Μ Ν Ο Ρ Τ Υ Χ` → `A B E Z H I K M N O P T Y X`;
/// * Armenian `օ` → `o`.
///
/// Not covered (deliberately): letters that only resemble Latin ones in some fonts (Greek
/// `α`, `γ`, `ε`, `τ`, Cyrillic `к`, `т`, `п`, …), Latin-script confusables outside NFKC
/// (`ı`, `ɑ`, `ɡ`, …), Cherokee, Lisu and other scripts, digit look-alikes such as `O`/`0`.
fn fold_confusable(c: char) -> Option<char> {
    let a = match c {
        '\u{00A0}'
        | '\u{1680}'
        | '\u{2000}'..='\u{200A}'
        | '\u{202F}'
        | '\u{205F}'
        | '\u{3000}' => ' ',
        '\u{02D7}'
        | '\u{058A}'
        | '\u{2010}'..='\u{2015}'
        | '\u{2043}'
        | '\u{2212}'
        | '\u{2796}'
        | '\u{2E3A}'
        | '\u{2E3B}'
        | '\u{FE58}'
        | '\u{FE63}'
        | '\u{FF0D}' => '-',
        // Greek capitals.
        '\u{0391}' => 'A',
        '\u{0392}' => 'B',
        '\u{0395}' => 'E',
        '\u{0396}' => 'Z',
        '\u{0397}' => 'H',
        '\u{0399}' => 'I',
        '\u{039A}' => 'K',
        '\u{039C}' => 'M',
        '\u{039D}' => 'N',
        '\u{039F}' => 'O',
        '\u{03A1}' => 'P',
        '\u{03A4}' => 'T',
        '\u{03A5}' => 'Y',
        '\u{03A7}' => 'X',
        // Greek small letters.
        '\u{03B9}' => 'i',
        '\u{03BA}' => 'k',
        '\u{03BD}' => 'v',
        '\u{03BF}' => 'o',
        '\u{03C1}' => 'p',
        '\u{03C5}' => 'u',
        // Cyrillic capitals.
        '\u{0405}' => 'S',
        '\u{0406}' => 'I',
        '\u{0408}' => 'J',
        '\u{0410}' => 'A',
        '\u{0412}' => 'B',
        '\u{0415}' => 'E',
        '\u{041A}' => 'K',
        '\u{041C}' => 'M',
        '\u{041D}' => 'H',
        '\u{041E}' => 'O',
        '\u{0420}' => 'P',
        '\u{0421}' => 'C',
        '\u{0422}' => 'T',
        '\u{0425}' => 'X',
        '\u{04AE}' => 'Y',
        '\u{04BA}' => 'H',
        '\u{04C0}' => 'I',
        '\u{051A}' => 'Q',
        '\u{051C}' => 'W',
        // Cyrillic small letters.
        '\u{0430}' => 'a',
        '\u{0435}' => 'e',
        '\u{043E}' => 'o',
        '\u{0440}' => 'p',
        '\u{0441}' => 'c',
        '\u{0443}' => 'y',
        '\u{0445}' => 'x',
        '\u{0455}' => 's',
        '\u{0456}' => 'i',
        '\u{0458}' => 'j',
        '\u{04BB}' => 'h',
        '\u{04CF}' => 'l',
        '\u{0501}' => 'd',
        '\u{051B}' => 'q',
        '\u{051D}' => 'w',
        // Armenian.
        '\u{0585}' => 'o',
        _ => return None,
    };
    Some(a)
}

/// How a character normalises, decided without writing anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Normalises to itself.
    Same,
    /// Produces no normalised bytes.
    Dropped,
    /// Normalises to this single, different character.
    Replace(char),
    /// Needs the NFKC path ([`push_nfkc`]).
    Nfkc,
}

/// Classify a character (steps 1–5, with NFKC deferred to [`push_nfkc`]).
fn classify(c: char) -> Class {
    if c.is_ascii() {
        return Class::Same;
    }
    match bmp_table().get(c as usize) {
        Some(&SAME) => Class::Same,
        Some(&DROPPED) => Class::Dropped,
        Some(&e) if e & 0x80 != 0 => Class::Replace(char::from(e & 0x7F)),
        _ => classify_slow(c),
    }
}

/// [`bmp_table`] entry: the character normalises to itself.
const SAME: u8 = 1;
/// [`bmp_table`] entry: the character is dropped.
const DROPPED: u8 = 2;

/// [`classify_slow`] of every BMP code point, encoded in a byte: [`SAME`], [`DROPPED`],
/// `0x80 | b` for [`Class::Replace`] by ASCII `b`, `0` for anything else (ask
/// [`classify_slow`]). Built once per process on first use (65,536 classifications, about a
/// millisecond), so that text in any BMP script costs one table lookup per character instead
/// of several hash and binary-search lookups.
fn bmp_table() -> &'static [u8] {
    static TABLE: OnceLock<Box<[u8]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=0xFFFF_u32)
            .map(|cp| match char::from_u32(cp).map(classify_slow) {
                Some(Class::Same) | None => SAME,
                Some(Class::Dropped) => DROPPED,
                Some(Class::Replace(a)) if a.is_ascii() => 0x80 | a as u8,
                Some(Class::Replace(_) | Class::Nfkc) => 0,
            })
            .collect()
    })
}

/// [`classify`] without the fast path.
fn classify_slow(c: char) -> Class {
    if c.is_ascii() {
        return Class::Same;
    }
    if is_ignorable(c) || is_combining_mark(c) {
        return Class::Dropped;
    }
    if let Some(d) = fold_digit(c) {
        return Class::Replace(d);
    }
    // Full-width ASCII: its NFKC is exactly `c - 0xFEE0`; common enough in CJK text (and in
    // evasions) to skip the NFKC machinery.
    if let '\u{FF01}'..='\u{FF5E}' = c
        && let Some(a) = char::from_u32(u32::from(c) - 0xFEE0)
    {
        return Class::Replace(a);
    }
    if is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes {
        return fold_confusable(c).map_or(Class::Same, Class::Replace);
    }
    Class::Nfkc
}

/// What [`push_nfkc`] did with a character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Normalises to itself; nothing was written.
    Same,
    /// Produces no normalised bytes; nothing was written.
    Dropped,
    /// Its (different, non-empty) normalisation was appended.
    Changed,
}

/// Steps 1, 2, 3 and 5 for one character produced by NFKC, appending the result.
fn push_folded(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c);
    } else if !(is_ignorable(c) || is_combining_mark(c)) {
        out.push(fold_digit(c).or_else(|| fold_confusable(c)).unwrap_or(c));
    }
}

/// Step 4 (and steps 1, 2, 3, 5 on its output) for a [`Class::Nfkc`] character; appends to
/// `out` only for [`Outcome::Changed`].
fn push_nfkc(c: char, out: &mut String) -> Outcome {
    let before = out.len();
    for d in std::iter::once(c).nfkc() {
        push_folded(d, out);
    }
    let mut buf = [0u8; 4];
    if out.as_bytes().get(before..) == Some(c.encode_utf8(&mut buf).as_bytes()) {
        out.truncate(before);
        Outcome::Same
    } else if out.len() == before {
        Outcome::Dropped
    } else {
        Outcome::Changed
    }
}

/// Index of the first non-ASCII byte of `bytes` at or after `i` (or `bytes.len()`).
fn skip_ascii(bytes: &[u8], mut i: usize) -> usize {
    const CHUNK: usize = 16;
    while let Some(chunk) = bytes.get(i..i + CHUNK) {
        if !chunk.is_ascii() {
            break;
        }
        i += CHUNK;
    }
    while bytes.get(i).is_some_and(u8::is_ascii) {
        i += 1;
    }
    i
}

/// Normalise one char into `out` (the per-char rule of the module documentation); returns
/// `false` if the char is dropped (nothing appended).
pub fn normalize_char(c: char, out: &mut String) -> bool {
    match classify(c) {
        Class::Same => out.push(c),
        Class::Dropped => return false,
        Class::Replace(a) => out.push(a),
        Class::Nfkc => match push_nfkc(c, out) {
            Outcome::Same => out.push(c),
            Outcome::Dropped => return false,
            Outcome::Changed => {}
        },
    }
    true
}

/// Normalise a whole string (convenience for [`Normalized::push_str`] on a fresh value).
pub fn normalize(text: &str) -> Normalized {
    let mut n = Normalized::new();
    n.push_str(text);
    n
}

/// Largest original or normalised offset at which a run may start before the map degrades
/// (see the module documentation): `u32::MAX`, lowered only by tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RunLimit(usize);

impl Default for RunLimit {
    fn default() -> Self {
        RunLimit(u32::MAX as usize)
    }
}

/// One run of the offset map (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    /// Normalised offset where the run starts.
    norm: u32,
    /// Original offset where the run starts.
    orig: u32,
    /// `0`: identity run. Otherwise each source char of the run has this many original bytes…
    olen: u16,
    /// …and produced this many normalised bytes (`>= 1`).
    nlen: u16,
}

/// The source character of one normalised byte: its normalised and original extents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Unit {
    norm_start: usize,
    norm_end: usize,
    orig_start: usize,
    orig_end: usize,
}

/// Normalised text with a map back to the original text it was built from.
///
/// The original text is the concatenation of every piece passed to [`Normalized::push_str`]
/// since the last [`Normalized::clear`], minus what [`Normalized::drain_front`] removed; all
/// original offsets are byte offsets in that text. Methods taking normalised offsets clamp
/// them to `as_str().len()` and never panic.
#[derive(Debug, Default, Clone)]
pub struct Normalized {
    /// The normalised text.
    out: String,
    /// Length of the original text covered.
    orig_len: usize,
    /// False while `out` is byte-identical to the original (no map is kept).
    mapped: bool,
    /// The map could not be represented (a run starting beyond `limit`); the whole buffer
    /// is one unit. Implies `mapped`.
    degraded: bool,
    /// Runs, sorted by strictly increasing `norm`; when `mapped && !degraded` and `out` is
    /// non-empty, `runs[0].norm == 0` and every normalised byte belongs to the last run
    /// starting at or before it. Unused while not mapped.
    runs: Vec<Run>,
    /// See [`RunLimit`].
    limit: RunLimit,
}

impl Normalized {
    /// Empty.
    pub fn new() -> Normalized {
        Normalized::default()
    }

    /// Forget everything (keeps allocations).
    pub fn clear(&mut self) {
        self.out.clear();
        self.runs.clear();
        self.orig_len = 0;
        self.mapped = false;
        self.degraded = false;
    }

    /// Append the normalisation of `piece`. The original text is the concatenation of all
    /// pieces appended since the last clear/drain; offsets are in that coordinate space.
    pub fn push_str(&mut self, piece: &str) {
        if piece.is_ascii() {
            // Hot path: a copy, plus (after a change) at most one run.
            let at = self.orig_len;
            self.emit_identity(piece, at);
            self.orig_len += piece.len();
            return;
        }
        let base = self.orig_len;
        let bytes = piece.as_bytes();
        // `piece[run..i]` is the pending run of characters that normalise to themselves.
        let mut run = 0;
        let mut i = 0;
        loop {
            i = skip_ascii(bytes, i);
            let Some(c) = piece.get(i..).and_then(|rest| rest.chars().next()) else {
                break;
            };
            let clen = c.len_utf8();
            let class = classify(c);
            if class != Class::Same {
                self.emit_identity(&piece[run..i], base + run);
                run = i + clen;
                let before = self.out.len();
                match class {
                    Class::Same => {}
                    Class::Dropped => self.note_dropped(),
                    Class::Replace(a) => {
                        self.out.push(a);
                        self.note_changed(before, base + i, clen, a.len_utf8());
                    }
                    Class::Nfkc => match push_nfkc(c, &mut self.out) {
                        Outcome::Same => run = i,
                        Outcome::Dropped => self.note_dropped(),
                        Outcome::Changed => {
                            let nlen = self.out.len() - before;
                            self.note_changed(before, base + i, clen, nlen);
                        }
                    },
                }
            }
            i += clen;
        }
        self.emit_identity(&piece[run..], base + run);
        self.orig_len = base + piece.len();
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.out
    }

    /// Length in bytes of the original text covered (sum of pushed piece lengths minus
    /// drained).
    pub fn original_len(&self) -> usize {
        self.orig_len
    }

    /// Original byte offset where the source character of normalised byte `n` begins; for
    /// `n == as_str().len()` (or beyond) returns `original_len()`.
    pub fn orig_offset(&self, n: usize) -> usize {
        match self.unit(n) {
            Some(u) => u.orig_start,
            None => self.orig_len,
        }
    }

    /// The original byte span `[start, end)` covering every source character of normalised
    /// bytes `[ns, ne)` (`ns < ne <= len`): `start = orig_offset(ns)`, `end` = end of the
    /// source char of byte `ne - 1`. Invisible characters strictly inside the span are
    /// included; those just before or after it are not. Out-of-range input is clamped; an
    /// empty range gives the empty span at `orig_offset(ns)`.
    pub fn original_span(&self, ns: usize, ne: usize) -> (usize, usize) {
        let ne = ne.min(self.out.len());
        let start = self.orig_offset(ns);
        if ns >= ne {
            return (start, start);
        }
        match self.unit(ne - 1) {
            Some(u) => (start, u.orig_end.max(start)),
            None => (start, start),
        }
    }

    /// Normalised offset of the first byte at or after `n` that begins a new source character
    /// (the smallest `b >= n` that is 0, `len`, or where the source char of byte `b` differs
    /// from that of byte `b - 1`). Used to snap a cut point to a source-character boundary.
    pub fn next_boundary(&self, n: usize) -> usize {
        match self.unit(n) {
            Some(u) if u.norm_start == n => n,
            Some(u) => u.norm_end,
            None => self.out.len(),
        }
    }

    /// Largest `b <= n` that is a boundary in the sense of [`Normalized::next_boundary`].
    pub fn prev_boundary(&self, n: usize) -> usize {
        match self.unit(n) {
            Some(u) => u.norm_start,
            None => self.out.len(),
        }
    }

    /// Remove the first `n` normalised bytes (`n` must be a boundary as above; if not, it is
    /// snapped down with `prev_boundary`) and the original bytes before `orig_offset(n)`;
    /// later offsets are rebased. Returns the number of original bytes removed. Dropped
    /// (invisible) characters immediately before the cut go with the removed prefix.
    pub fn drain_front(&mut self, n: usize) -> usize {
        let n = self.prev_boundary(n);
        if n >= self.out.len() {
            let removed = self.orig_len;
            self.clear();
            return removed;
        }
        let cut = self.orig_offset(n);
        if self.mapped && !self.degraded {
            let idx = self.run_index(n);
            if let (Some(first), Ok(n32), Ok(cut32)) =
                (self.runs.get_mut(idx), u32::try_from(n), u32::try_from(cut))
            {
                // Split the run containing the cut; `n` is a unit start so this is exact.
                first.norm = n32;
                first.orig = cut32;
                self.runs.drain(..idx);
                for r in &mut self.runs {
                    r.norm = r.norm.saturating_sub(n32);
                    r.orig = r.orig.saturating_sub(cut32);
                }
            } else {
                self.degrade();
            }
        }
        self.out.drain(..n);
        self.orig_len = self.orig_len.saturating_sub(cut);
        // Back to the map-free representation when what is left is unchanged text.
        if self.mapped
            && !self.degraded
            && self.orig_len == self.out.len()
            && matches!(
                self.runs.as_slice(),
                [] | [Run {
                    orig: 0,
                    olen: 0,
                    ..
                }]
            )
        {
            self.runs.clear();
            self.mapped = false;
        }
        cut
    }

    /// True when the normalised text is byte-identical to the original (nothing changed so
    /// far, or nothing changed in what is left after `drain_front`).
    pub fn is_identity(&self) -> bool {
        !self.mapped
    }

    /// Append original text that normalises to itself; `orig_at` is its original offset.
    fn emit_identity(&mut self, s: &str, orig_at: usize) {
        if s.is_empty() {
            return;
        }
        if self.mapped && !self.degraded {
            let norm_at = self.out.len();
            let contiguous = match self.runs.last() {
                Some(r) if r.olen == 0 => r.orig as usize + (norm_at - r.norm as usize) == orig_at,
                _ => false,
            };
            if !contiguous {
                self.push_run(norm_at, orig_at, 0, 0);
            }
        }
        self.out.push_str(s);
    }

    /// Record that a character produced no output.
    fn note_dropped(&mut self) {
        self.materialize(self.out.len());
    }

    /// Record that the character at original offset `orig_at` (`olen` bytes) produced the
    /// `nlen` bytes now at normalised offset `norm_at`.
    fn note_changed(&mut self, norm_at: usize, orig_at: usize, olen: usize, nlen: usize) {
        self.materialize(norm_at);
        if self.degraded {
            return;
        }
        let (Ok(olen), Ok(nlen)) = (u16::try_from(olen), u16::try_from(nlen)) else {
            self.degrade();
            return;
        };
        if olen == 0 || nlen == 0 {
            // Not a change (callers never do this); dropped characters need no run.
            return;
        }
        if let Some(r) = self.runs.last()
            && r.olen == olen
            && r.nlen == nlen
        {
            let chars = (norm_at - r.norm as usize) / usize::from(nlen);
            if r.orig as usize + chars * usize::from(olen) == orig_at {
                return;
            }
        }
        self.push_run(norm_at, orig_at, olen, nlen);
    }

    /// Switch to the mapped representation; everything before `norm_len` is unchanged text.
    fn materialize(&mut self, norm_len: usize) {
        if !self.mapped {
            self.mapped = true;
            self.runs.clear();
            if norm_len > 0 {
                self.runs.push(Run {
                    norm: 0,
                    orig: 0,
                    olen: 0,
                    nlen: 0,
                });
            }
        }
    }

    /// Start a new run (or degrade if its offsets are not representable).
    fn push_run(&mut self, norm: usize, orig: usize, olen: u16, nlen: u16) {
        if norm > self.limit.0 || orig > self.limit.0 {
            self.degrade();
            return;
        }
        match (u32::try_from(norm), u32::try_from(orig)) {
            (Ok(norm), Ok(orig)) => self.runs.push(Run {
                norm,
                orig,
                olen,
                nlen,
            }),
            _ => self.degrade(),
        }
    }

    /// Give up the exact map: the whole buffer becomes one unit (conservative for masking).
    fn degrade(&mut self) {
        self.mapped = true;
        self.degraded = true;
        self.runs = Vec::new();
    }

    /// Index of the run containing normalised byte `b` (`b < len`, mapped, not degraded).
    fn run_index(&self, b: usize) -> usize {
        self.runs
            .partition_point(|r| r.norm as usize <= b)
            .saturating_sub(1)
    }

    /// The source character of normalised byte `b`, or `None` if `b >= len`.
    fn unit(&self, b: usize) -> Option<Unit> {
        let len = self.out.len();
        if b >= len {
            return None;
        }
        if !self.mapped {
            let s = self.out.floor_char_boundary(b);
            let e = self.out.ceil_char_boundary(b + 1);
            return Some(Unit {
                norm_start: s,
                norm_end: e,
                orig_start: s,
                orig_end: e,
            });
        }
        let whole = Unit {
            norm_start: 0,
            norm_end: len,
            orig_start: 0,
            orig_end: self.orig_len,
        };
        if self.degraded {
            return Some(whole);
        }
        let Some(r) = self.runs.get(self.run_index(b)) else {
            return Some(whole);
        };
        let (rn, ro) = (r.norm as usize, r.orig as usize);
        if rn > b {
            return Some(whole);
        }
        if r.olen == 0 {
            let s = self.out.floor_char_boundary(b).max(rn);
            let e = self.out.ceil_char_boundary(b + 1);
            let os = ro + (s - rn);
            Some(Unit {
                norm_start: s,
                norm_end: e,
                orig_start: os,
                orig_end: os + (e - s),
            })
        } else {
            let (olen, nlen) = (usize::from(r.olen), usize::from(r.nlen).max(1));
            let k = (b - rn) / nlen;
            let s = rn + k * nlen;
            let os = ro + k * olen;
            Some(Unit {
                norm_start: s,
                norm_end: s + nlen,
                orig_start: os,
                orig_end: os + olen,
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Normalise and return the normalised text.
    fn n(s: &str) -> String {
        normalize(s).as_str().to_owned()
    }

    /// The original substring that the normalised match of `needle` maps back to.
    fn span_of<'a>(orig: &'a str, needle: &str) -> &'a str {
        let norm = normalize(orig);
        let ns = norm.as_str().find(needle).unwrap();
        let (s, e) = norm.original_span(ns, ns + needle.len());
        &orig[s..e]
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str)] = &[
            ("alice\u{200B}@example.com", "alice@example.com"),
            ("ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "alice@example.com"),
            ("alice\u{FEFF}@ex\u{0430}mple.com", "alice@example.com"),
            ("１３８００１３８０００", "13800138000"),
            ("\u{660}\u{661}\u{662}\u{663}", "0123"),
            ("\u{6F4}\u{966}\u{E59}\u{FF19}", "4099"),
            ("𝟏𝟐𝟑", "123"),
            ("pass\u{AD}word", "password"),
            ("a\u{301}lice", "alice"),
            ("\u{FB01}le", "file"),
            ("a\u{A0}b\u{3000}c\u{202F}d", "a b c d"),
            ("中文测试", "中文测试"),
            (
                "call +86\u{2011}138\u{2012}0013\u{2212}8000",
                "call +86-138-0013-8000",
            ),
            ("𝐚𝐥𝐢𝐜𝐞", "alice"),
            ("①②³", "123"),
            ("㎒", "MHz"),
            ("\u{0421}\u{0415}\u{041E} \u{03BF}\u{03C1}", "CEO op"),
            ("\u{1D6B6}", "O"),
            ("\u{E0041}\u{E0042}x\u{E007F}", "x"),
            ("\u{3164}a\u{FE0F}", "a"),
            ("é", "é"),
            ("\u{967}\u{968}", "12"),
            (
                "Ｃall ａlice\u{200B}＠ex\u{0430}mple.com，tel ٠١٢\u{2013}３４ 中文 ﬁ\u{301}n",
                "Call alice@example.com,tel 012-34 中文 fin",
            ),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(n(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn spans_map_back_exactly() {
        let fw = "mail: ｍａｉｌ ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ, thanks";
        assert_eq!(
            span_of(fw, "alice@example.com"),
            "ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ"
        );
        let zw = "to alice\u{200B}@example.com\u{200B}!";
        assert_eq!(
            span_of(zw, "alice@example.com"),
            "alice\u{200B}@example.com"
        );
        let cy = "x alice\u{FEFF}@ex\u{0430}mple.com y";
        assert_eq!(
            span_of(cy, "alice@example.com"),
            "alice\u{FEFF}@ex\u{0430}mple.com"
        );
        let ph = "电话：１３８００１３８０００。";
        assert_eq!(span_of(ph, "13800138000"), "１３８００１３８０００");
        assert_eq!(span_of("ab\u{FB01}le", "fi"), "\u{FB01}");
        // Part of a ligature still maps to the whole source character.
        assert_eq!(span_of("ab\u{FB01}le", "f"), "\u{FB01}");
        assert_eq!(span_of("x a\u{301}lice", "alice"), "a\u{301}lice");
    }

    #[test]
    fn identity_and_offsets() {
        for same in [
            "中文测试",
            "かなカナ、한국어",
            "café naïve",
            "plain ascii\t\n",
        ] {
            let t = normalize(same);
            assert!(t.is_identity(), "{same:?}");
            assert_eq!((t.as_str(), t.original_len()), (same, same.len()));
        }
        let mut t = normalize("hello 中文 world");
        assert!(t.is_identity());
        assert_eq!(t.orig_offset(7), 6);
        assert_eq!(t.original_span(6, 7), (6, 9));
        assert_eq!(t.next_boundary(7), 9);
        assert_eq!(t.prev_boundary(7), 6);
        assert_eq!(t.orig_offset(100), t.original_len());
        t.push_str("\u{2014}");
        assert!(!t.is_identity());
        assert_eq!(t.as_str(), "hello 中文 world-");
        let len = t.as_str().len();
        assert_eq!(
            t.original_span(len - 1, len),
            (t.original_len() - 3, t.original_len())
        );
        assert_eq!(t.drain_front(len - 1), len - 1);
        assert_eq!((t.as_str(), t.original_len()), ("-", 3));
        t.push_str("ok");
        assert_eq!(t.drain_front(1), 3);
        assert!(t.is_identity());
        t.clear();
        assert_eq!(
            (t.as_str(), t.original_len(), t.is_identity()),
            ("", 0, true)
        );
    }

    #[test]
    fn dropped_characters_at_edges() {
        let mut t = normalize("\u{200B}ab\u{200D}");
        assert_eq!(t.as_str(), "ab");
        assert_eq!(t.original_len(), 8);
        assert_eq!(t.orig_offset(0), 3);
        assert_eq!(t.original_span(0, 2), (3, 5));
        assert_eq!(t.orig_offset(2), 8);
        // Cutting at 0 removes the invisible prefix only.
        assert_eq!(t.drain_front(0), 3);
        assert_eq!((t.orig_offset(0), t.original_len()), (0, 5));
        // Cutting at the end removes the invisible suffix too.
        assert_eq!(t.drain_front(2), 5);
        assert_eq!(t.original_len(), 0);
        let only = normalize("\u{200B}\u{200C}");
        assert_eq!(
            (only.as_str(), only.original_len(), only.is_identity()),
            ("", 6, false)
        );
        assert_eq!(only.original_span(0, 0), (6, 6));
    }

    #[test]
    fn normalize_char_reports_drops() {
        let mut s = String::new();
        assert!(!normalize_char('\u{200B}', &mut s));
        assert!(!normalize_char('\u{301}', &mut s));
        assert!(normalize_char('ｅ', &mut s));
        assert!(normalize_char('中', &mut s));
        assert!(normalize_char('\u{FDFA}', &mut s));
        assert!(s.starts_with("e中"));
        assert!(s.len() > 20);
    }

    #[test]
    fn degraded_map_over_masks() {
        let limit = 1 << 12;
        let big = "a".repeat(limit + 10);
        let mut t = Normalized {
            limit: RunLimit(limit),
            ..Normalized::default()
        };
        t.push_str(&big);
        assert!(t.is_identity());
        t.push_str("\u{FF41}b");
        assert!(!t.is_identity());
        let len = t.as_str().len();
        assert_eq!(&t.as_str()[len - 2..], "ab");
        assert_eq!(t.original_span(len - 2, len), (0, t.original_len()));
        assert_eq!(t.prev_boundary(len - 1), 0);
        assert_eq!(t.next_boundary(1), len);
        assert_eq!(t.drain_front(len - 1), 0);
        assert_eq!(t.drain_front(len), limit + 14);
        assert!(t.is_identity());
    }

    /// Every character of every character's normalisation normalises to itself, so
    /// normalisation is idempotent on any string.
    #[test]
    fn idempotent_per_char_exhaustive() {
        let mut once = String::new();
        let mut twice = String::new();
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            once.clear();
            normalize_char(c, &mut once);
            for d in once.chars() {
                twice.clear();
                normalize_char(d, &mut twice);
                assert_eq!(
                    twice.chars().collect::<Vec<_>>(),
                    [d],
                    "U+{:04X} -> {once:?}",
                    c as u32
                );
            }
        }
    }

    #[test]
    fn fast_paths_are_exact() {
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let slow = classify_slow(c);
            match classify(c) {
                Class::Nfkc => assert_eq!(slow, Class::Nfkc),
                fast => assert_eq!(fast, slow, "U+{:04X}", c as u32),
            }
            if let '\u{FF01}'..='\u{FF5E}' = c {
                let nfkc: String = std::iter::once(c).nfkc().collect();
                assert_eq!(slow, Class::Replace(nfkc.chars().next().unwrap()));
            }
        }
    }

    #[test]
    fn digit_table_is_sane() {
        assert!(DIGIT_ZEROS.windows(2).all(|w| w[0] + 10 <= w[1]));
        for &z in DIGIT_ZEROS {
            for v in 0..10 {
                let c = char::from_u32(z + v).unwrap();
                assert!(c.is_numeric(), "U+{:04X}", z + v);
                assert_eq!(fold_digit(c), Some(char::from(b'0' + v as u8)));
            }
        }
        assert!(IGNORABLE.windows(2).all(|w| w[0].1 < w[1].0));
        assert!(IGNORABLE.iter().all(|&(lo, hi)| lo <= hi));
    }

    /// Naive reference: per normalised byte, the original extent of its source char.
    fn reference(s: &str) -> (String, Vec<(usize, usize)>) {
        let mut out = String::new();
        let mut map = Vec::new();
        for (i, c) in s.char_indices() {
            normalize_char(c, &mut out);
            map.resize(out.len(), (i, i + c.len_utf8()));
        }
        (out, map)
    }

    /// Check every observable of `t` against the reference map (shifted by `nshift`
    /// normalised / `oshift` original bytes) for the original text `orig`.
    fn check_against(
        t: &Normalized,
        full: &(String, Vec<(usize, usize)>),
        nshift: usize,
        oshift: usize,
        orig_len: usize,
    ) {
        let (out, map) = full;
        assert_eq!(t.as_str(), &out[nshift..]);
        assert_eq!(t.original_len() + oshift, orig_len);
        let len = t.as_str().len();
        for b in 0..len {
            let (s, e) = map[b + nshift];
            assert_eq!(t.orig_offset(b) + oshift, s, "byte {b}");
            assert_eq!(t.original_span(b, b + 1), (s - oshift, e - oshift));
            let is_boundary = b == 0 || map[b + nshift - 1] != map[b + nshift];
            assert_eq!(t.next_boundary(b) == b, is_boundary, "byte {b}");
            assert_eq!(t.prev_boundary(b) == b, is_boundary, "byte {b}");
        }
        assert_eq!(t.orig_offset(len), t.original_len());
        assert_eq!(t.next_boundary(len), len);
        assert_eq!(t.prev_boundary(len), len);
    }

    fn any_char() -> impl Strategy<Value = char> {
        prop_oneof![
            4 => prop::sample::select(vec!['a', 'b', 'e', 'l', '@', '.', ' ', '-', '1', '9']),
            2 => prop::char::range('\u{4E00}', '\u{4E08}'),
            2 => prop::char::range('\u{FF01}', '\u{FF5E}'),
            2 => prop::sample::select(vec![
                '\u{200B}', '\u{200D}', '\u{FEFF}', '\u{AD}', '\u{2060}', '\u{034F}', '\u{E0041}',
                '\u{3164}', '\u{FE0F}',
            ]),
            2 => prop::char::range('\u{300}', '\u{36F}'),
            2 => prop::char::range('\u{400}', '\u{4FF}'),
            2 => prop::char::range('\u{1D7CE}', '\u{1D7FF}'),
            1 => prop::char::range('\u{660}', '\u{669}'),
            1 => prop::char::range('\u{2010}', '\u{2015}'),
            1 => prop::char::range('\u{3040}', '\u{30FF}'),
            1 => prop::char::range('\u{3131}', '\u{3163}'),
            1 => prop::sample::select(vec![
                '\u{A0}', '\u{FB01}', '\u{FDFA}', '\u{3392}', '\u{A8}', '\u{344}', '\u{FF9E}',
                '\u{2460}', 'é', '\u{1D400}', '\u{391}', '\u{3BF}', '\u{585}',
            ]),
        ]
    }

    fn any_text() -> impl Strategy<Value = String> {
        prop::collection::vec(any_char(), 0..48).prop_map(|v| v.into_iter().collect())
    }

    /// Char-boundary cut points of `s` derived from arbitrary indices.
    fn cuts(s: &str, raw: &[usize]) -> Vec<usize> {
        let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
        let mut v: Vec<usize> = raw.iter().map(|r| bounds[r % bounds.len()]).collect();
        v.sort_unstable();
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn whole_matches_reference(s in any_text()) {
            let full = reference(&s);
            check_against(&normalize(&s), &full, 0, 0, s.len());
        }

        #[test]
        fn pieces_equal_whole(s in any_text(), raw in prop::collection::vec(any::<usize>(), 0..8)) {
            let full = reference(&s);
            let whole = normalize(&s);
            let mut t = Normalized::new();
            let mut at = 0;
            for cut in cuts(&s, &raw).into_iter().chain([s.len()]) {
                t.push_str(&s[at..cut]);
                at = cut;
            }
            prop_assert_eq!(t.as_str(), whole.as_str());
            prop_assert_eq!(t.is_identity(), whole.is_identity());
            check_against(&t, &full, 0, 0, s.len());
            let mut per_char = Normalized::new();
            let mut buf = [0u8; 4];
            for c in s.chars() {
                per_char.push_str(c.encode_utf8(&mut buf));
            }
            check_against(&per_char, &full, 0, 0, s.len());
        }

        #[test]
        fn drain_then_push_equals_tail(
            s in any_text(),
            raw in prop::collection::vec(any::<usize>(), 0..8),
            drains in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let full = reference(&s);
            let mut t = Normalized::new();
            let (mut at, mut nshift, mut oshift) = (0, 0, 0);
            for (k, cut) in cuts(&s, &raw).into_iter().chain([s.len()]).enumerate() {
                t.push_str(&s[at..cut]);
                at = cut;
                if let Some(&d) = drains.get(k) {
                    let len = t.as_str().len();
                    let want_n = t.prev_boundary(d % (len + 2));
                    let want_cut = if want_n >= len { t.original_len() } else { t.orig_offset(want_n) };
                    let removed = t.drain_front(d % (len + 2));
                    prop_assert_eq!(removed, want_cut);
                    nshift += want_n;
                    oshift += removed;
                    check_against(&t, &reference(&s[..at]), nshift, oshift, at);
                }
            }
            check_against(&t, &full, nshift, oshift, s.len());
        }

        #[test]
        fn spans_on_char_boundaries(s in any_text(), a in any::<usize>(), b in any::<usize>()) {
            let t = normalize(&s);
            let len = t.as_str().len();
            if len > 0 {
                let (x, y) = (a % len, b % len);
                let (ns, ne) = (x.min(y), x.max(y) + 1);
                let (os, oe) = t.original_span(ns, ne);
                prop_assert!(os < oe && oe <= t.original_len());
                prop_assert!(s.is_char_boundary(os) && s.is_char_boundary(oe));
            }
        }

        #[test]
        fn map_is_consistent(s in any_text()) {
            let t = normalize(&s);
            for b in 0..t.as_str().len() {
                let (os, oe) = t.original_span(b, b + 1);
                let mut chars = s[os..oe].chars();
                let c = chars.next().unwrap();
                prop_assert!(chars.next().is_none());
                let mut alone = String::new();
                prop_assert!(normalize_char(c, &mut alone));
                let (pb, nb) = (t.prev_boundary(b), t.next_boundary(b + 1));
                prop_assert_eq!(&t.as_str()[pb..nb], alone.as_str());
            }
        }

        #[test]
        fn idempotent(s in any_text()) {
            let once = normalize(&s);
            let twice = normalize(once.as_str());
            prop_assert_eq!(twice.as_str(), once.as_str());
            prop_assert!(twice.is_identity());
        }
    }
}
