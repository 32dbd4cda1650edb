//! TEMPORARY identity stub; replaced by the real normaliser.
#![allow(missing_docs)]
#[derive(Debug, Default, Clone)]
pub struct Normalized {
    text: String,
}
impl Normalized {
    pub fn new() -> Normalized {
        Normalized::default()
    }
    pub fn clear(&mut self) {
        self.text.clear()
    }
    pub fn push_str(&mut self, piece: &str) {
        self.text.push_str(piece)
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }
    pub fn original_len(&self) -> usize {
        self.text.len()
    }
    pub fn orig_offset(&self, n: usize) -> usize {
        n
    }
    pub fn original_span(&self, ns: usize, ne: usize) -> (usize, usize) {
        (ns, ne)
    }
    pub fn next_boundary(&self, mut n: usize) -> usize {
        while !self.text.is_char_boundary(n) {
            n += 1
        }
        n
    }
    pub fn prev_boundary(&self, mut n: usize) -> usize {
        while !self.text.is_char_boundary(n) {
            n -= 1
        }
        n
    }
    pub fn drain_front(&mut self, n: usize) -> usize {
        let n = self.prev_boundary(n);
        self.text.drain(..n);
        n
    }
    pub fn is_identity(&self) -> bool {
        true
    }
}
pub fn normalize(text: &str) -> Normalized {
    let mut n = Normalized::new();
    n.push_str(text);
    n
}
