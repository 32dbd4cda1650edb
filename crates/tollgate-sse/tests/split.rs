//! Property tests: decoding a split stream equals decoding it whole, and matches a model.
//!
//! The generator builds valid SSE streams (random fields, with and without the optional space,
//! comments, unicode values, LF / CRLF / CR endings, optional BOM) together with the frames a
//! correct decoder must report, then checks every way of cutting the bytes into reads.

use proptest::prelude::*;
use tollgate_sse::check::{decode_chunks, split_at_cuts, split_matches_whole};

/// One line of an event, before its line ending.
#[derive(Debug, Clone)]
enum Line {
    Comment(String),
    Data { value: String, space: bool },
    DataNoColon,
    Event(String),
    Id(String),
    Retry(u32),
    Unknown(String, String),
}

/// What the decoder must report for one generated event.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    data: Option<Vec<u8>>,
    event: Option<Vec<u8>>,
    id: Option<Vec<u8>>,
    retry: Option<u64>,
    comment_only: bool,
}

const ENDINGS: [&str; 3] = ["\n", "\r\n", "\r"];

fn value() -> impl Strategy<Value = String> {
    // Any characters but the line breaks and NUL (NUL would invalidate an `id`).
    "[^\r\n\u{0}]{0,12}"
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        1 => value().prop_map(Line::Comment),
        3 => (value(), any::<bool>()).prop_map(|(value, space)| Line::Data { value, space }),
        1 => Just(Line::DataNoColon),
        1 => value().prop_map(Line::Event),
        1 => value().prop_map(Line::Id),
        1 => any::<u32>().prop_map(Line::Retry),
        1 => ("[a-z]{1,6}", value())
            .prop_filter("known field", |(n, _)| !matches!(n.as_str(), "data" | "event" | "id" | "retry"))
            .prop_map(|(n, v)| Line::Unknown(n, v)),
    ]
}

/// One generated event: its lines with an index into [`ENDINGS`], then the blank line's ending.
type Event = (Vec<(Line, usize)>, usize);

/// A generated stream: optional BOM, then events.
fn stream() -> impl Strategy<Value = (bool, Vec<Event>)> {
    let event = (prop::collection::vec((line(), 0..3usize), 0..5), 0..3usize);
    (any::<bool>(), prop::collection::vec(event, 0..8))
}

/// Serialize a generated stream and compute the expected frames.
fn render(bom: bool, events: &[Event]) -> (Vec<u8>, Vec<Expected>) {
    let mut out = String::new();
    if bom {
        out.push('\u{FEFF}');
    }
    let mut expected = Vec::new();
    for (lines, blank_ending) in events {
        let mut exp = Expected {
            data: None,
            event: None,
            id: None,
            retry: None,
            comment_only: true,
        };
        let mut data: Option<String> = None;
        let mut push_data = |v: &str| match &mut data {
            Some(d) => {
                d.push('\n');
                d.push_str(v);
            }
            None => data = Some(v.to_owned()),
        };
        for (line, ending) in lines {
            let text = match line {
                Line::Comment(c) => format!(":{c}"),
                Line::Data { value, space } => {
                    exp.comment_only = false;
                    // The parser removes exactly one space after the colon.
                    let seen = if *space {
                        value.as_str()
                    } else {
                        value.strip_prefix(' ').unwrap_or(value)
                    };
                    push_data(seen);
                    format!("data:{}{value}", if *space { " " } else { "" })
                }
                Line::DataNoColon => {
                    exp.comment_only = false;
                    push_data("");
                    "data".to_owned()
                }
                Line::Event(v) => {
                    exp.comment_only = false;
                    exp.event = Some(v.as_bytes().to_vec());
                    format!("event: {v}")
                }
                Line::Id(v) => {
                    exp.comment_only = false;
                    exp.id = Some(v.as_bytes().to_vec());
                    format!("id: {v}")
                }
                Line::Retry(ms) => {
                    exp.comment_only = false;
                    exp.retry = Some(u64::from(*ms));
                    format!("retry: {ms}")
                }
                Line::Unknown(n, v) => {
                    exp.comment_only = false;
                    format!("{n}: {v}")
                }
            };
            out.push_str(&text);
            out.push_str(ENDINGS[*ending]);
        }
        // A CR ending followed by an empty line ending in LF would read as one CRLF: the
        // generated blank line then uses CR too, so the intended frame boundaries hold.
        let mut blank = ENDINGS[*blank_ending];
        if out.ends_with('\r') && blank == "\n" {
            blank = "\r";
        }
        out.push_str(blank);
        exp.data = data.map(String::into_bytes);
        expected.push(exp);
    }
    (out.into_bytes(), expected)
}

fn observed(input: &[u8], chunks: &[&[u8]]) -> Vec<Expected> {
    let out = decode_chunks(chunks.iter().copied(), 1 << 20);
    assert_eq!(out.end, Ok(()), "valid stream {input:?} must end cleanly");
    // A stream that is only a BOM has no frame to carry it: it stays buffered (module docs).
    let bom_only = input == "\u{FEFF}".as_bytes();
    assert_eq!(out.leftover.is_empty(), !bom_only, "{input:?}");
    out.frames
        .iter()
        .map(|f| Expected {
            data: f.data.as_ref().map(|d| d.to_vec()),
            event: f.event.as_ref().map(|d| d.to_vec()),
            id: f.id.as_ref().map(|d| d.to_vec()),
            retry: f.retry,
            comment_only: f.comment_only(),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn valid_stream_split_anywhere_matches_whole_and_model(
        (bom, events) in stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let (input, expected) = render(bom, &events);
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        prop_assert_eq!(split_matches_whole(&input, &cuts, 1 << 20), Ok(()));
        prop_assert_eq!(observed(&input, &[&input]), expected.clone());
        prop_assert_eq!(observed(&input, &split_at_cuts(&input, &cuts)), expected);
    }

    #[test]
    fn valid_stream_in_one_byte_reads_matches_whole((bom, events) in stream()) {
        let (input, expected) = render(bom, &events);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        prop_assert_eq!(observed(&input, &bytes), expected);
        let every_byte: Vec<usize> = (0..input.len()).collect();
        prop_assert_eq!(split_matches_whole(&input, &every_byte, 1 << 20), Ok(()));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_split_matches_whole(
        input in prop::collection::vec(
            prop_oneof![any::<u8>(), Just(b'\n'), Just(b'\r'), Just(b':'), Just(0xEF)], 0..300),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        max in prop_oneof![Just(1usize << 20), 1usize..64],
    ) {
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        prop_assert_eq!(split_matches_whole(&input, &cuts, max), Ok(()));
    }

    #[test]
    fn valid_stream_under_small_limit_fails_the_same_when_split(
        (bom, events) in stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        max in 1usize..80,
    ) {
        let (input, _) = render(bom, &events);
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        prop_assert_eq!(split_matches_whole(&input, &cuts, max), Ok(()));
    }
}
