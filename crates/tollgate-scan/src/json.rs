//! OpenAI JSON bodies and stream chunks: finding and rewriting their text fields.
