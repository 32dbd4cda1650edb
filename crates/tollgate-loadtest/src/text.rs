//! Seeded prompt text of an exact token length.
//!
//! Why: routing experiments need prompts whose *token* counts are known without a tokenizer
//! round-trip, and whose shared parts tokenize identically. The text is sentences of short
//! English words (2–5 letters) from a built-in list. Under the simulated fleet's pseudo-tokenizer
//! (`tollgate-simfleet/src/tokenizer.rs`: a word of ≤ 6 bytes with its glued leading space is one
//! token, punctuation is one token, a whitespace run is one token) every word, every `.` and the
//! final `\n` is exactly one token, so [`tokens`] returns text of exactly `n` tokens there. Real
//! BPE tokenizers also keep such common short words to one token each, so counts stay close on a
//! real server. Bytes per token ≈ 5 (word + space).
//!
//! Every generated message ends with `\n`: the fleet concatenates message contents, and the
//! newline keeps the last word of one message from gluing onto the first word of the next, so a
//! shared system message always yields the same token prefix.

use rand::Rng;

/// Short common words (2–5 letters): one token each with their glued space.
const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "it", "you", "that", "he", "was", "for", "on", "are",
    "with", "as", "his", "they", "be", "at", "one", "have", "this", "from", "or", "had", "by",
    "word", "but", "what", "some", "we", "can", "out", "other", "were", "all", "there", "when",
    "up", "use", "your", "how", "said", "an", "each", "she", "which", "do", "their", "time", "if",
    "will", "way", "about", "many", "then", "them", "write", "would", "like", "so", "these", "her",
    "long", "make", "thing", "see", "him", "two", "has", "look", "more", "day", "could", "go",
    "come", "did", "sound", "no", "most", "my", "over", "know", "water", "than", "call", "first",
    "who", "may", "down", "side", "been", "now", "find", "any", "new", "work", "part", "take",
    "get", "place", "made", "live", "where", "after", "back", "only", "round", "man", "year",
    "came", "show", "every", "good", "me", "give", "our", "under", "name", "very", "just", "form",
    "great", "think", "say", "help", "low", "line", "turn", "cause", "much", "mean", "move",
    "right", "boy", "old", "too", "same", "tell", "does", "set", "three", "want", "air", "well",
    "also", "play", "small", "end", "put", "home", "read", "hand", "port", "large", "spell", "add",
    "even", "land", "here", "must", "big", "high", "such", "act", "why", "ask", "men", "went",
    "light", "kind", "off", "need", "house", "try", "us", "again", "point", "world", "near",
    "build", "self", "earth", "head", "stand", "own", "page", "grow", "study", "still", "learn",
    "plant", "cover", "food", "sun", "four", "state", "keep", "eye", "never", "last", "let",
    "cross", "farm", "hard", "start", "might", "story", "saw", "far", "sea", "draw", "left",
    "late", "run", "while", "press", "close", "night", "real", "life", "few", "north",
];

/// Shortest and longest sentence (in words) before a `.`; only shapes the text.
const SENTENCE_WORDS: (usize, usize) = (6, 16);

/// Text of exactly `n` tokens (under the simulated fleet's tokenizer), ending in `\n` when
/// `n ≥ 1`. Deterministic for a given RNG state.
pub fn tokens<R: Rng + ?Sized>(rng: &mut R, n: usize) -> String {
    let mut s = String::with_capacity(n * 5 + 1);
    if n == 0 {
        return s;
    }
    let body = n - 1; // the final "\n" is one token
    let mut count = 0usize;
    let mut sentence_left = rng.random_range(SENTENCE_WORDS.0..=SENTENCE_WORDS.1);
    while count < body {
        if sentence_left == 0 && !s.is_empty() && !s.ends_with('.') {
            s.push('.');
            sentence_left = rng.random_range(SENTENCE_WORDS.0..=SENTENCE_WORDS.1);
        } else {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(WORDS[rng.random_range(0..WORDS.len())]);
            sentence_left = sentence_left.saturating_sub(1);
        }
        count += 1;
    }
    s.push('\n');
    s
}

/// Tokens of text made by [`tokens`] (words, `.`s and the final `\n`, one token each).
#[cfg(test)]
pub(crate) fn count(s: &str) -> u32 {
    let words = s.split([' ', '.', '\n']).filter(|w| !w.is_empty()).count();
    (words + s.matches('.').count() + s.matches('\n').count()) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn every_word_is_short_enough_to_be_one_token() {
        assert!(
            WORDS
                .iter()
                .all(|w| (1..=5).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_lowercase()))
        );
    }

    #[test]
    fn same_seed_same_text() {
        let a = tokens(&mut ChaCha8Rng::seed_from_u64(9), 300);
        let b = tokens(&mut ChaCha8Rng::seed_from_u64(9), 300);
        let c = tokens(&mut ChaCha8Rng::seed_from_u64(10), 300);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.ends_with('\n'));
        assert_eq!(tokens(&mut ChaCha8Rng::seed_from_u64(1), 0), "");
        assert_eq!(tokens(&mut ChaCha8Rng::seed_from_u64(1), 1), "\n");
    }
}
