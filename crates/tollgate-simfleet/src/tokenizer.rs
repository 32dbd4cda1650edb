//! Deterministic pseudo-tokenizer shared by the simulated backends and the tests.
//!
//! Why it exists: the simulated engines need token counts (for step times, KV accounting and
//! `usage`) and token *ids* (for prefix-cache hashing) without shipping a real BPE vocabulary.
//! What matters for routing experiments is that the same text always yields the same ids, that a
//! shared text prefix yields a shared id prefix, and that counts land near a real tokenizer's
//! (~4 bytes of English per token). It is cheap: one pass, no allocation in [`count_tokens`].
//!
//! # Rules
//! - A *word* is a maximal run of alphanumeric characters (Unicode-aware). One space directly in
//!   front of a word is glued to it, as GPT-style BPEs do (`" hello"` is one piece).
//! - A word of at most [`SHORT_WORD_BYTES`] bytes (counting the glued space) is one token; a longer
//!   word is cut into pieces of [`LONG_WORD_PIECE_BYTES`] bytes (on character boundaries).
//! - Every other whitespace run is cut into pieces of at most [`LONG_WORD_PIECE_BYTES`] bytes.
//! - Every other character (punctuation, symbols, emoji) is one token.
//! - A token id is the FNV-1a 64 hash of the piece's bytes, folded to 32 bits (high ^ low).
//!
//! # Prefix stability
//! `tokenize(a + b)` starts with `tokenize(a)` whenever `a` ends at a piece boundary that `b`
//! does not extend (e.g. `a` ends with a newline or punctuation, which chat templates do), so
//! multi-turn prompts share id prefixes the way they do on a real server.

/// Longest word (in bytes, glued space included) kept as a single token. Raising it lowers token
/// counts for prose (fewer, longer tokens) and makes prefix blocks fill more slowly.
pub const SHORT_WORD_BYTES: usize = 6;

/// Piece size (bytes) for long words and whitespace runs: the "~4 bytes per token" average of
/// English BPEs. Raising it lowers token counts, and so every simulated prefill time, roughly
/// proportionally for text dominated by long words.
pub const LONG_WORD_PIECE_BYTES: usize = 4;

/// FNV-1a 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Tokenizes `text` into pseudo token ids (see the module docs for the rules).
pub fn tokenize(text: &str) -> Vec<u32> {
    let mut out = Vec::with_capacity(text.len() / 4 + 1);
    for_each_piece(text, |piece| out.push(token_id(piece)));
    out
}

/// Number of tokens [`tokenize`] would return, without allocating.
pub fn count_tokens(text: &str) -> usize {
    let mut n = 0usize;
    for_each_piece(text, |_| n += 1);
    n
}

/// Stable id of one piece: FNV-1a 64 folded to u32.
fn token_id(piece: &str) -> u32 {
    let mut h = FNV_OFFSET;
    for b in piece.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    ((h >> 32) ^ (h & 0xffff_ffff)) as u32
}

/// Calls `f` with every piece of `text`, in order; the pieces concatenate back to `text`.
fn for_each_piece(text: &str, mut f: impl FnMut(&str)) {
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let len = if c == ' ' && rest[1..].chars().next().is_some_and(char::is_alphanumeric) {
            // glued space + word
            1 + word_len(&rest[1..])
        } else if c.is_alphanumeric() {
            word_len(rest)
        } else if c.is_whitespace() {
            rest.char_indices()
                .find(|(_, ch)| !ch.is_whitespace())
                .map_or(rest.len(), |(i, _)| i)
        } else {
            c.len_utf8()
        };
        let (word, tail) = rest.split_at(len);
        let splittable = word
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c.is_whitespace());
        if word.len() <= SHORT_WORD_BYTES || !splittable {
            f(word);
        } else {
            split_pieces(word, &mut f);
        }
        rest = tail;
    }
}

/// Byte length of the alphanumeric run at the start of `s`.
fn word_len(s: &str) -> usize {
    s.char_indices()
        .find(|(_, ch)| !ch.is_alphanumeric())
        .map_or(s.len(), |(i, _)| i)
}

/// Cuts `word` into pieces of about [`LONG_WORD_PIECE_BYTES`] bytes on char boundaries.
fn split_pieces(word: &str, f: &mut impl FnMut(&str)) {
    let mut start = 0usize;
    let mut end = 0usize;
    for (i, ch) in word.char_indices() {
        let next = i + ch.len_utf8();
        if next - start > LONG_WORD_PIECE_BYTES && end > start {
            f(&word[start..end]);
            start = end;
        }
        end = next;
    }
    if end > start {
        f(&word[start..end]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_back_to_the_text() {
        let text = "Hello, world!  The quick brown fox jumps over\n\nextraordinarily 東京 🙂 x";
        let mut pieces = Vec::new();
        for_each_piece(text, |p| pieces.push(p.to_string()));
        assert_eq!(pieces.concat(), text);
        assert_eq!(pieces.len(), count_tokens(text));
        assert_eq!(tokenize(text).len(), count_tokens(text));
    }

    #[test]
    fn same_text_gives_same_ids() {
        assert_eq!(tokenize("a b c d e"), tokenize("a b c d e"));
        assert_ne!(tokenize("alpha"), tokenize("beta"));
    }

    #[test]
    fn roughly_four_bytes_per_token_for_english() {
        let text = "The simulated inference fleet lets the gateway be tested without any GPUs. \
                    Every routing decision needs backends that behave like real servers.";
        let ratio = text.len() as f64 / count_tokens(text) as f64;
        assert!((3.0..=6.0).contains(&ratio), "bytes per token {ratio}");
    }

    #[test]
    fn shared_prefix_gives_shared_ids() {
        let a = "System: you are helpful.\n";
        let b = format!("{a}User: what is the weather?\n");
        let ta = tokenize(a);
        let tb = tokenize(&b);
        assert_eq!(&tb[..ta.len()], &ta[..]);
    }

    #[test]
    fn empty_text_has_no_tokens() {
        assert!(tokenize("").is_empty());
        assert_eq!(count_tokens(""), 0);
    }
}
