//! Checksum validators that turn a shape match into a real detection: a 16-digit number is a
//! card only if its Luhn sum is right, an 18-character Chinese ID only if its ISO 7064
//! MOD 11-2 check character and birth date are right, an IBAN only if its MOD-97 is 1.
//! Validators see the matched (normalised) text and ignore spaces and dashes.

use serde::Deserialize;

/// A validator named in a rule file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validator {
    /// Luhn (payment cards), 12–19 digits.
    Luhn,
    /// Chinese resident identity card number (GB 11643): 17 digits + check digit or `X`,
    /// ISO 7064 MOD 11-2 and a plausible birth date.
    CnResidentId,
    /// IBAN: ISO 13616 country code, MOD-97 == 1, country length when the country is known.
    Iban,
}

impl Validator {
    /// Does `text` pass?
    pub fn check(self, text: &str) -> bool {
        match self {
            Validator::Luhn => luhn(text),
            Validator::CnResidentId => cn_resident_id(text),
            Validator::Iban => iban(text),
        }
    }
}

fn significant(text: &str) -> impl Iterator<Item = u8> + '_ {
    text.bytes().filter(|b| !matches!(b, b' ' | b'-' | b'.'))
}

/// Luhn check over the digits of `text` (12–19 digits; any other character fails).
pub fn luhn(text: &str) -> bool {
    let mut digits = [0u8; 19];
    let mut n = 0;
    for b in significant(text) {
        if !b.is_ascii_digit() || n == digits.len() {
            return false;
        }
        digits[n] = b - b'0';
        n += 1;
    }
    if n < 12 {
        return false;
    }
    let mut sum = 0u32;
    for (i, &d) in digits[..n].iter().rev().enumerate() {
        let mut v = u32::from(d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Chinese resident ID: 17 digits and a check character (`0-9` or `X`), MOD 11-2, birth date
/// YYYYMMDD between 1800-01-01 and 2099-12-31 and a valid day of month.
pub fn cn_resident_id(text: &str) -> bool {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b: Vec<u8> = significant(text).collect();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(W)
        .map(|(&d, w)| u32::from(d - b'0') * w)
        .sum();
    if b[17].to_ascii_uppercase() != CHECK[(sum % 11) as usize] {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter()
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'))
    };
    let (y, m, d) = (num(6..10), num(10..12), num(12..14));
    if !(1800..=2099).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    d <= days
}

/// IBAN lengths by country (ISO 13616 registry, common countries). Unknown countries are
/// accepted on the checksum alone (15–34 characters).
const IBAN_LEN: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VG", 24),
    (b"XK", 20),
];

/// IBAN: two letters, two digits, 11–30 alphanumerics; MOD-97 of the rearranged number is 1.
pub fn iban(text: &str) -> bool {
    let b: Vec<u8> = significant(text).map(|c| c.to_ascii_uppercase()).collect();
    if !(15..=34).contains(&b.len())
        || !b[..2].iter().all(u8::is_ascii_uppercase)
        || !b[2..4].iter().all(u8::is_ascii_digit)
        || !b[4..].iter().all(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    if let Some((_, len)) = IBAN_LEN.iter().find(|(cc, _)| cc[..] == b[..2])
        && *len != b.len()
    {
        return false;
    }
    let mut rem = 0u32;
    for &c in b[4..].iter().chain(&b[..4]) {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_cases() {
        assert!(luhn("4111111111111111"));
        assert!(luhn("4111 1111 1111 1111"));
        assert!(luhn("5500-0000-0000-0004"));
        assert!(luhn("378282246310005"));
        assert!(!luhn("4111111111111112"));
        assert!(!luhn("1234567812345678"));
        assert!(!luhn("41111111111")); // too short
        assert!(!luhn("4111x11111111111"));
    }

    #[test]
    fn cn_id_cases() {
        assert!(cn_resident_id("11010519491231002X"));
        assert!(cn_resident_id("11010519491231002x"));
        assert!(!cn_resident_id("110105194912310021")); // wrong check character
        assert!(!cn_resident_id("110105194913310024")); // month 13
        assert!(!cn_resident_id("11010519491231002")); // 17 chars
    }

    #[test]
    fn iban_cases() {
        assert!(iban("GB82WEST12345698765432"));
        assert!(iban("GB82 WEST 1234 5698 7654 32"));
        assert!(iban("DE89370400440532013000"));
        assert!(iban("fr1420041010050500013m02606"));
        assert!(!iban("GB82WEST12345698765431"));
        assert!(!iban("DE8937040044053201300")); // wrong German length
        assert!(!iban("1289370400440532013000"));
    }
}
