//! Scanner throughput: block scans of 4 KiB prompts, the normaliser alone, JSON request bodies,
//! streamed chat-completion frames, and the "Hyperscan vs Aho-Corasick" engine decision.
//!
//! Run: `cargo bench -p tollgate-scan --bench scan`.
//!
//! Inputs are generated deterministically (fixed seed) at start-up; nothing is read from the
//! network. Rule sets: the shipped `rules/{pii,secrets,words}.toml` (every file that loads; a
//! file that fails is reported on stderr and left out) and the 10,000-word benchmark dictionary
//! `rules/bench/dict10k.toml` (when it is missing an equivalent deterministic list is generated
//! into a temporary directory).
//!
//! Groups:
//! * `block_4k/{rules}/{prompt}` — `Scanner::scan_text(Request, ..)` over 4 KiB prompts:
//!   `en_clean` (prose with numbers, dates, URLs), `en_pii` (the same plus five PII items: an
//!   e-mail, a phone number, a card, an IBAN and a Chinese ID, ~1.2 per KiB) and `zh_pii`
//!   (Chinese prose with full-width punctuation and four PII items); rules `shipped` and
//!   `shipped+dict10k`.
//! * `normalize_4k/{prompt}` — `normalize::normalize` alone.
//! * `request_json/{rules}/{body}` — `json::scan_request` on a ~4 KiB chat body.
//! * `stream_frames/...` — ~300 small `chat.completion.chunk` frames through
//!   `StreamScanner::on_chunk` + `on_done` (elements = frames, bytes = delta content bytes), and
//!   the same pieces through `TextStream::push` + `finish` without JSON.
//! * `engine_choice/{dict}/{engine}/{prompt}` — a dictionary (10,000 or 50 words, ASCII
//!   case-insensitive) over the 4 KiB prompts: `rules` = our Hyperscan-backed `RuleSet` holding
//!   only the dictionary rule (full `scan_text`: normalisation, whole-word check, selection),
//!   `hs_raw` = the bare Hyperscan database of the same literals (no `\b`, counting every
//!   match end), `ac_default` = `AhoCorasick` with default options, `ac_dfa_ll` = `AhoCorasick`
//!   with `AhoCorasickKind::DFA` and `MatchKind::LeftmostLongest` (both AC variants counting
//!   non-overlapping matches with `ascii_case_insensitive(true)`, like the rule).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate_scan::json::{self, ChunkOut, StreamScanner};
use tollgate_scan::rules::Matcher;
use tollgate_scan::{DEFAULT_MAX_MATCH_LEN, Direction, RuleSet, Scanner, hs, normalize};

const PROMPT_LEN: usize = 4096;

// ---------------------------------------------------------------------------------------------
// Deterministic inputs

/// SplitMix64: small, deterministic, good enough for test text.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

/// Space-separated.
const EN_WORDS: &str = "\
    the of and to a in is it that for on with as this be are we you can from by or have not \
    but what all when there which their will each about how up out them then she many some \
    so these would other into has more two like time could make than first been its who now \
    people my over down only way find use may water long little very after words called just \
    where most know get through back much before go good new write our used me man too any \
    day same right look think also around another came come work three must because does \
    part even place well such here take why help put different away again off went old \
    number great tell men say small every found still between name should home big give air \
    line set own under read last never us left end along while might next sound below saw \
    something thought both few those always looked show large often together asked house \
    world going want school important until form food keep children feet land side without \
    boy once animals life enough took sometimes four head above kind began almost live page \
    got earth need far hand high year mother light parts country father let night following \
    picture being study second eyes soon times story boys since white days paper hard near \
    sentence better best across during today others however sure means knew try told young \
    model prompt request response service deployment cluster latency budget invoice customer \
    account report summary quarter revenue pipeline database migration schema endpoint token \
    gateway config release review please explain compare rewrite translate draft";

const EN_TECH: &[&str] = &[
    "https://docs.example.com/api/v2/chat",
    "https://github.com/example/project/issues/1432",
    "https://www.example.org/blog/2024/03/latency-budgets",
    "https://status.example.net/incidents?id=7781",
    "2024-03-17",
    "2023-11-02",
    "March 17, 2024",
    "Q3 2024",
    "v2.14.1",
    "42",
    "3.5",
    "1,250",
    "99.9%",
    "$4,800",
    "17:45",
    "128k",
    "12 ms",
    "10,000",
];

/// One PII item per entry, each masked by the shipped rules (e-mail, international phone,
/// Luhn-valid card, mod-97-valid IBAN, checksum-valid Chinese resident ID).
const EN_PII: &[&str] = &[
    " Please send the signed copy to alice.chen@example.com before Friday.",
    " You can reach our finance desk on +44 20 7946 0958 during office hours.",
    " The refund should go back to the card 4111 1111 1111 1111 that was charged.",
    " Wire the deposit to IBAN GB82 WEST 1234 5698 7654 32 and quote the invoice number.",
    " The applicant's resident ID is 11010519491231002X according to the form.",
];

/// Space-separated.
const ZH_WORDS: &str = "\
    我们 需要 系统 数据 分析 用户 模型 问题 方法 结果 今天 进行 可以 \
    一个 这个 服务器 配置 性能 测试 报告 请 帮我 总结 下面 内容 并且 \
    翻译 成 英文 客户 订单 发票 季度 收入 部署 网关 延迟 预算 团队 会议 \
    时间 已经 完成 计划 项目 进度 风险 建议 优化 接口 文档 版本 发布 \
    检查 日志 错误 原因 解决 方案 重要 如果 因为 所以 但是 我们的 他们 \
    北京 上海 市场 产品 价格 增长 比较 明显 主要 目前 情况";

const ZH_TECH: &[&str] = &[
    "2024年3月17日",
    "第3季度",
    "API",
    "GPU",
    "https://docs.example.com/zh/guide",
    "99.9%",
    "128",
    "v2.14",
    "12毫秒",
    "4,800元",
];

const ZH_PII: &[&str] = &[
    "请把合同发到 alice.chen@example.com 邮箱。",
    "我的手机号是13800138000，请在下午联系我。",
    "退款请退回原来的银行卡4111 1111 1111 1111。",
    "申请人的身份证号码是11010519491231002X，请核对。",
];

/// A space-separated word list as a slice (split once per process).
fn vocab(
    lock: &'static OnceLock<Vec<&'static str>>,
    words: &'static str,
) -> &'static [&'static str] {
    lock.get_or_init(|| words.split_whitespace().collect())
}

fn en_words() -> &'static [&'static str] {
    static V: OnceLock<Vec<&'static str>> = OnceLock::new();
    vocab(&V, EN_WORDS)
}

fn zh_words() -> &'static [&'static str] {
    static V: OnceLock<Vec<&'static str>> = OnceLock::new();
    vocab(&V, ZH_WORDS)
}

fn en_sentence(rng: &mut Rng, out: &mut String) {
    let n = 8 + rng.below(13);
    for i in 0..n {
        let w = if rng.below(12) == 0 {
            rng.pick(EN_TECH)
        } else {
            rng.pick(en_words())
        };
        out.push(' ');
        if i == 0 {
            let mut cs = w.chars();
            if let Some(c) = cs.next() {
                out.push(c.to_ascii_uppercase());
                out.push_str(cs.as_str());
            }
        } else {
            out.push_str(w);
        }
        if i + 1 < n && rng.below(9) == 0 {
            out.push(',');
        }
    }
    out.push(if rng.below(8) == 0 { '?' } else { '.' });
    if rng.below(7) == 0 {
        out.push_str("\n\n");
    }
}

fn zh_sentence(rng: &mut Rng, out: &mut String) {
    let n = 6 + rng.below(10);
    for i in 0..n {
        if rng.below(10) == 0 {
            out.push(' ');
            out.push_str(rng.pick(ZH_TECH));
            out.push(' ');
        } else {
            out.push_str(rng.pick(zh_words()));
        }
        if i + 1 < n && rng.below(6) == 0 {
            out.push_str(if rng.below(3) == 0 { "、" } else { "，" });
        }
    }
    out.push_str(match rng.below(8) {
        0 => "？",
        1 => "：",
        _ => "。",
    });
    if rng.below(8) == 0 {
        out.push('\n');
    }
}

/// Truncate to at most `len` bytes, on a char boundary.
fn truncate_chars(s: &mut String, len: usize) {
    let mut n = len.min(s.len());
    for _ in 0..4 {
        if s.is_char_boundary(n) {
            break;
        }
        n -= 1;
    }
    s.truncate(n);
}

/// A prompt of exactly (ASCII) or about (CJK) `PROMPT_LEN` bytes; `pii` items are spread evenly.
fn prompt(seed: u64, zh: bool, pii: &[&str]) -> String {
    let mut rng = Rng(seed);
    let mut s = String::with_capacity(PROMPT_LEN + 256);
    let step = PROMPT_LEN / (pii.len() + 1);
    let mut next = 0;
    for _ in 0..10_000 {
        if s.len() >= PROMPT_LEN + 64 {
            break;
        }
        if next < pii.len() && s.len() >= step * (next + 1) - step / 2 {
            s.push_str(pii[next]);
            next += 1;
        }
        if zh {
            zh_sentence(&mut rng, &mut s);
        } else {
            en_sentence(&mut rng, &mut s);
        }
    }
    assert_eq!(next, pii.len(), "not every PII item fit");
    let t = s.trim_start().to_string();
    let mut t = t;
    truncate_chars(&mut t, PROMPT_LEN);
    t
}

struct Prompts {
    en_clean: String,
    en_pii: String,
    zh_pii: String,
}

impl Prompts {
    fn new() -> Prompts {
        Prompts {
            en_clean: prompt(0x5eed_0001, false, &[]),
            en_pii: prompt(0x5eed_0001, false, EN_PII),
            zh_pii: prompt(0x5eed_0002, true, ZH_PII),
        }
    }
    fn all(&self) -> [(&'static str, &str); 3] {
        [
            ("en_clean", self.en_clean.as_str()),
            ("en_pii", self.en_pii.as_str()),
            ("zh_pii", self.zh_pii.as_str()),
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// Rule sets

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shipped rule files that load (all at once if possible, else each one that loads alone).
fn shipped_files() -> Vec<PathBuf> {
    let root = repo_root().join("rules");
    let all: Vec<PathBuf> = ["pii.toml", "secrets.toml", "words.toml"]
        .iter()
        .map(|f| root.join(f))
        .collect();
    if RuleSet::load(&all, DEFAULT_MAX_MATCH_LEN).is_ok() {
        return all;
    }
    let mut ok = Vec::new();
    for f in all {
        match RuleSet::load(std::slice::from_ref(&f), DEFAULT_MAX_MATCH_LEN) {
            Ok(_) => ok.push(f),
            Err(errs) => {
                eprintln!("bench: leaving out {} — it does not load:", f.display());
                for e in errs {
                    eprintln!("  {e}");
                }
            }
        }
    }
    ok
}

/// Lower-case pseudo-word of 5..=12 letters.
fn pseudo_word(rng: &mut Rng) -> String {
    const ONSETS: &[&str] = &[
        "b", "c", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "cr",
        "dr", "gl", "pl", "sk", "st", "str", "tr", "",
    ];
    const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ea", "oo", "ou", "y"];
    const CODAS: &[&str] = &["", "", "n", "r", "s", "l", "x", "nd", "nt", "rk", "ng"];
    let target = 5 + rng.below(8);
    let mut w = String::new();
    for _ in 0..16 {
        if w.len() >= target {
            break;
        }
        w.push_str(rng.pick(ONSETS));
        w.push_str(rng.pick(VOWELS));
        w.push_str(rng.pick(CODAS));
    }
    w.truncate(target);
    w
}

/// The 10k dictionary rule file: the shipped one, or a generated equivalent in a temp dir.
fn dict10k_file() -> PathBuf {
    let shipped = repo_root().join("rules/bench/dict10k.toml");
    if shipped.is_file() {
        return shipped;
    }
    eprintln!(
        "bench: {} missing; generating a 10k-word list",
        shipped.display()
    );
    let dir = std::env::temp_dir().join(format!("tollgate-scan-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng(0x70116A7E);
    let mut words = std::collections::BTreeSet::new();
    for _ in 0..1_000_000 {
        if words.len() >= 10_000 {
            break;
        }
        words.insert(pseudo_word(&mut rng));
    }
    let list: Vec<String> = words.into_iter().collect();
    std::fs::write(dir.join("words-10k.txt"), list.join("\n")).unwrap();
    let toml = "[[rule]]\nid = \"bench.dict10k\"\nwords_file = \"words-10k.txt\"\n\
                case_insensitive = true\nwhole_word = true\naction = \"mask\"\n\
                replacement = \"***\"\nseverity = \"low\"\n";
    let path = dir.join("dict10k.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn load(files: &[PathBuf]) -> Arc<RuleSet> {
    match RuleSet::load(files, DEFAULT_MAX_MATCH_LEN) {
        Ok(r) => Arc::new(r),
        Err(errs) => {
            for e in &errs {
                eprintln!("  {e}");
            }
            panic!("rule files {files:?} do not load");
        }
    }
}

fn words_of(rs: &RuleSet) -> Vec<String> {
    rs.rules()
        .iter()
        .flat_map(|r| match &r.matcher {
            Matcher::Words(w) => w.clone(),
            Matcher::Pattern(_) => Vec::new(),
        })
        .collect()
}

/// A rule set holding one word rule like the dictionary's (case-insensitive, whole word, mask).
fn inline_dict(words: &[String]) -> Arc<RuleSet> {
    let mut t = String::from(
        "[[rule]]\nid = \"bench.dict50\"\ncase_insensitive = true\nwhole_word = true\n\
         action = \"mask\"\nreplacement = \"***\"\nwords = [\n",
    );
    for w in words {
        t.push_str(&format!(
            "  \"{}\",\n",
            w.replace('\\', "\\\\").replace('"', "\\\"")
        ));
    }
    t.push_str("]\n");
    let rs = RuleSet::compile(
        &[(Path::new("bench-dict50.toml"), &t)],
        DEFAULT_MAX_MATCH_LEN,
    );
    Arc::new(rs.unwrap_or_else(|e| panic!("inline dictionary: {e:?}")))
}

struct Sets {
    shipped: Arc<RuleSet>,
    shipped_dict: Arc<RuleSet>,
    dict10k: Arc<RuleSet>,
}

/// Compiled once per process (the 10k dictionary takes a while to compile).
fn sets() -> &'static Sets {
    static S: OnceLock<Sets> = OnceLock::new();
    S.get_or_init(build_sets)
}

fn build_sets() -> Sets {
    let shipped = shipped_files();
    let dict = dict10k_file();
    let mut with_dict = shipped.clone();
    with_dict.push(dict.clone());
    Sets {
        shipped: load(&shipped),
        shipped_dict: load(&with_dict),
        dict10k: load(&[dict]),
    }
}

fn scanner(rs: &Arc<RuleSet>) -> Scanner {
    Scanner::new(Arc::clone(rs)).unwrap()
}

// ---------------------------------------------------------------------------------------------
// block_4k and normalize_4k

fn block_4k(c: &mut Criterion) {
    let p = Prompts::new();
    let s = sets();
    let mut g = c.benchmark_group("block_4k");
    for (rname, rs) in [
        ("shipped", &s.shipped),
        ("shipped+dict10k", &s.shipped_dict),
    ] {
        let mut sc = scanner(rs);
        for (pname, text) in p.all() {
            let r = sc.scan_text(Direction::Request, text);
            eprintln!(
                "bench: block_4k/{rname}/{pname}: {} bytes, {} hits, masked {}, blocked {:?}",
                text.len(),
                r.hits.len(),
                r.masked.is_some(),
                r.blocked
            );
            g.throughput(Throughput::Bytes(text.len() as u64));
            g.bench_function(format!("{rname}/{pname}"), |b| {
                b.iter(|| black_box(sc.scan_text(Direction::Request, black_box(text))))
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("normalize_4k");
    for (pname, text) in [("en_clean", p.en_clean.as_str()), ("zh_pii", &p.zh_pii)] {
        let n = normalize::normalize(text);
        eprintln!(
            "bench: normalize_4k/{pname}: {} -> {} bytes, identity {}",
            text.len(),
            n.as_str().len(),
            n.is_identity()
        );
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(pname, |b| {
            b.iter(|| black_box(normalize::normalize(black_box(text))))
        });
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// request_json

fn chat_body(pii: bool) -> Vec<u8> {
    let mut rng = Rng(0x5eed_0003);
    let mut prose = |sentences: usize| {
        let mut s = String::new();
        for _ in 0..sentences {
            en_sentence(&mut rng, &mut s);
        }
        s.trim_start().to_string()
    };
    let system = format!(
        "You are a helpful assistant for the finance operations team. Answer concisely, cite the \
         policy section you rely on, and never invent account numbers. {}",
        prose(4)
    );
    let user1 = prose(14);
    let assistant = prose(10);
    let mut user2 = prose(7);
    if pii {
        user2.push_str(EN_PII[0]);
        user2.push_str(EN_PII[2]);
    }
    let v = serde_json::json!({
        "model": "gpt-4o-mini",
        "temperature": 0.2,
        "max_tokens": 800,
        "stream": false,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user1},
            {"role": "assistant", "content": assistant},
            {"role": "user", "content": [
                {"type": "text", "text": user2},
            ]},
        ],
        "user": "user-1842",
    });
    serde_json::to_vec(&v).unwrap()
}

fn request_json(c: &mut Criterion) {
    let s = sets();
    let bodies = [("clean", chat_body(false)), ("pii", chat_body(true))];
    let mut g = c.benchmark_group("request_json");
    for (rname, rs) in [
        ("shipped", &s.shipped),
        ("shipped+dict10k", &s.shipped_dict),
    ] {
        let mut sc = scanner(rs);
        for (bname, body) in &bodies {
            let r = json::scan_request(&mut sc, body).unwrap();
            eprintln!(
                "bench: request_json/{rname}/{bname}: {} bytes, {} hits, rewritten {}",
                body.len(),
                r.hits.len(),
                r.body.is_some()
            );
            g.throughput(Throughput::Bytes(body.len() as u64));
            g.bench_function(format!("{rname}/{bname}"), |b| {
                b.iter(|| black_box(json::scan_request(&mut sc, black_box(body)).unwrap()))
            });
        }
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// stream_frames

struct Stream {
    /// `data:` payloads, in order (role frame, content frames, finish frame).
    frames: Vec<Vec<u8>>,
    /// The content pieces alone.
    pieces: Vec<String>,
}

fn chunk(id: &str, delta: serde_json::Value, finish: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": 1_718_000_000u64,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0ba0d124f1",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    }))
    .unwrap()
}

fn stream(content_frames: usize) -> Stream {
    let mut rng = Rng(0x5eed_0004);
    let mut text = String::new();
    let mut k = 0;
    for _ in 0..1000 {
        if text.len() >= content_frames * 6 {
            break;
        }
        en_sentence(&mut rng, &mut text);
        // An answer that repeats a contact detail or two.
        if k < 2 && text.len() > 400 * (k + 1) {
            text.push_str(EN_PII[k]);
            k += 1;
        }
    }
    let text = text.trim_start().to_string();
    let mut pieces = Vec::with_capacity(content_frames);
    let mut at = 0;
    for _ in 0..content_frames {
        if at >= text.len() {
            break;
        }
        let n = (3 + rng.below(6)).min(text.len() - at);
        pieces.push(text[at..at + n].to_string());
        at += n;
    }
    let id = "chatcmpl-9fN3x7TqQ2bLk8Vw1ZcYpR4sDeHa";
    let mut frames = vec![chunk(
        id,
        serde_json::json!({"role": "assistant", "content": ""}),
        None,
    )];
    for p in &pieces {
        frames.push(chunk(id, serde_json::json!({"content": p}), None));
    }
    frames.push(chunk(id, serde_json::json!({}), Some("stop")));
    Stream { frames, pieces }
}

fn run_stream(sc: &mut Scanner, frames: &[Vec<u8>]) -> usize {
    let mut ss = StreamScanner::new();
    let mut replaced = 0;
    for f in frames {
        match ss.on_chunk(sc, f) {
            ChunkOut::Unchanged => {}
            ChunkOut::Replace(v) => replaced += v.len(),
            other => panic!("stream frame: {other:?}"),
        }
    }
    replaced += ss.on_done(sc).unwrap().len();
    black_box(ss.hits.len());
    replaced
}

fn stream_frames(c: &mut Criterion) {
    let s = sets();
    let st = stream(300);
    let content: usize = st.pieces.iter().map(String::len).sum();
    let frame_bytes: usize = st.frames.iter().map(Vec::len).sum();
    let mut g = c.benchmark_group("stream_frames");
    for (rname, rs) in [
        ("shipped", &s.shipped),
        ("shipped+dict10k", &s.shipped_dict),
    ] {
        let mut sc = scanner(rs);
        let replaced = run_stream(&mut sc, &st.frames);
        eprintln!(
            "bench: stream_frames/{rname}: {} frames ({} content), {content} content bytes, \
             {frame_bytes} frame bytes, {replaced} replacement payloads",
            st.frames.len(),
            st.pieces.len()
        );
        g.throughput(Throughput::ElementsAndBytes {
            elements: st.frames.len() as u64,
            bytes: content as u64,
        });
        g.bench_function(format!("{rname}/json"), |b| {
            b.iter(|| black_box(run_stream(&mut sc, black_box(&st.frames))))
        });

        let mut out = String::with_capacity(content + 256);
        let mut hits = Vec::new();
        g.throughput(Throughput::ElementsAndBytes {
            elements: st.pieces.len() as u64,
            bytes: content as u64,
        });
        g.bench_function(format!("{rname}/text_push"), |b| {
            b.iter(|| {
                out.clear();
                hits.clear();
                let mut ts = sc.stream(Direction::Response);
                for p in &st.pieces {
                    ts.push(&mut sc, black_box(p), &mut out, &mut hits).unwrap();
                }
                ts.finish(&mut sc, &mut out, &mut hits).unwrap();
                black_box(out.len())
            })
        });
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// engine_choice

/// Hyperscan database of the literal words, escaped as the engine does, caseless, no `\b`.
fn hs_literals(words: &[String]) -> hs::Database {
    let exprs: Vec<hs::Expr> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut p = String::new();
            for b in w.bytes() {
                if b.is_ascii_alphanumeric() {
                    p.push(b as char);
                } else {
                    p.push_str(&format!("\\x{b:02x}"));
                }
            }
            hs::Expr {
                pattern: p,
                flags: hs::FLAG_CASELESS,
                id: i as u32,
            }
        })
        .collect();
    hs::Database::compile(&exprs).unwrap()
}

fn engine_choice(c: &mut Criterion) {
    let p = Prompts::new();
    let s = sets();
    let words10k = words_of(&s.dict10k);
    assert!(
        words10k.len() >= 10_000,
        "dictionary has {}",
        words10k.len()
    );
    let words50: Vec<String> = words10k.iter().take(50).cloned().collect();
    let dict50 = inline_dict(&words50);
    eprintln!("bench: libhs {}", hs::version());
    let mut g = c.benchmark_group("engine_choice");
    for (dname, words, rs) in [
        ("dict10k", &words10k, &s.dict10k),
        ("dict50", &words50, &dict50),
    ] {
        let mut sc = scanner(rs);
        let db = hs_literals(words);
        let mut scratch = db.scratch().unwrap();
        let ac_default = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(words)
            .unwrap();
        let ac_dfa = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .kind(Some(AhoCorasickKind::DFA))
            .match_kind(MatchKind::LeftmostLongest)
            .build(words)
            .unwrap();
        eprintln!(
            "bench: engine_choice/{dname}: {} words, ac_default kind {:?} ({} B heap), \
             ac_dfa_ll kind {:?} ({} B heap)",
            words.len(),
            ac_default.kind(),
            ac_default.memory_usage(),
            ac_dfa.kind(),
            ac_dfa.memory_usage()
        );
        for (pname, text) in p.all() {
            let bytes = text.as_bytes();
            let hs_count = |scratch: &mut hs::Scratch| {
                let mut n = 0usize;
                db.scan(bytes, scratch, |_, _, _| {
                    n += 1;
                    true
                })
                .unwrap();
                n
            };
            eprintln!(
                "bench: engine_choice/{dname}/{pname}: rules {} hits, hs_raw {} match ends, \
                 ac_default {} matches, ac_dfa_ll {} matches",
                sc.scan_text(Direction::Request, text).hits.len(),
                hs_count(&mut scratch),
                ac_default.find_iter(bytes).count(),
                ac_dfa.find_iter(bytes).count()
            );
            g.throughput(Throughput::Bytes(bytes.len() as u64));
            g.bench_function(format!("{dname}/rules/{pname}"), |b| {
                b.iter(|| black_box(sc.scan_text(Direction::Request, black_box(text))))
            });
            g.bench_function(format!("{dname}/hs_raw/{pname}"), |b| {
                b.iter(|| black_box(hs_count(&mut scratch)))
            });
            g.bench_function(format!("{dname}/ac_default/{pname}"), |b| {
                b.iter(|| black_box(ac_default.find_iter(black_box(bytes)).count()))
            });
            g.bench_function(format!("{dname}/ac_dfa_ll/{pname}"), |b| {
                b.iter(|| black_box(ac_dfa.find_iter(black_box(bytes)).count()))
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = block_4k, request_json, stream_frames, engine_choice
}
criterion_main!(benches);
