//! Prompt token counting for context-length rules. The tokenizer is chosen per virtual model;
//! tables are built into the binary (bpe-openai: same tokens as tiktoken-rs, 2–2.7× faster,
//! ../shared/notes/dependencies.md §6) and loaded once, on first use or by [`Tokenizer::warm`]
//! at start-up. Only requests that a rule needs a count for are ever tokenized.

/// A BPE vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Tokenizer {
    /// `cl100k_base` (GPT-4, GPT-3.5; a reasonable stand-in for Llama-3-class vocabularies).
    #[default]
    Cl100k,
    /// `o200k_base` (GPT-4o and later).
    O200k,
}

impl Tokenizer {
    /// Parse a config value.
    pub fn from_name(s: &str) -> Option<Tokenizer> {
        match s {
            "cl100k" | "cl100k_base" => Some(Tokenizer::Cl100k),
            "o200k" | "o200k_base" => Some(Tokenizer::O200k),
            _ => None,
        }
    }

    /// Config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tokenizer::Cl100k => "cl100k_base",
            Tokenizer::O200k => "o200k_base",
        }
    }

    fn bpe(self) -> &'static bpe_openai::Tokenizer {
        match self {
            Tokenizer::Cl100k => bpe_openai::cl100k_base(),
            Tokenizer::O200k => bpe_openai::o200k_base(),
        }
    }

    /// Build the tables now (≈20 ms) so the first request does not pay for it.
    pub fn warm(self) {
        let _ = self.bpe().count("warm");
    }

    /// Tokens in `text`.
    pub fn count(self, text: &str) -> usize {
        self.bpe().count(text)
    }
}
