//! Workload generators against the simulated fleet's own tokenizer: exact prompt lengths, shared
//! prefixes that tokenize identically, and length distributions near their targets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tollgate_loadtest::workload::{
    LongTail, ShareGptSpec, SharedPrefixSpec, Workload, WorkloadSpec,
};
use tollgate_simfleet::tokenizer::{count_tokens, tokenize};

fn w1(zipf: f64) -> WorkloadSpec {
    WorkloadSpec::SharedPrefix(SharedPrefixSpec {
        groups: 8,
        prefix_tokens: 1500,
        users_per_group: 5,
        question_tokens: 120,
        output_tokens: 32,
        group_zipf_s: zipf,
    })
}

fn w3(long: Option<LongTail>) -> WorkloadSpec {
    WorkloadSpec::Sharegpt(ShareGptSpec {
        system_tokens: 100,
        input_mean: 230.0,
        input_sigma: 0.8,
        input_min: 4,
        input_max: 4000,
        output_mean: 200.0,
        output_sigma: 0.6,
        output_min: 1,
        output_max: 1024,
        long,
    })
}

/// What the fleet tokenizes: message contents concatenated.
fn prompt_text(p: &tollgate_loadtest::workload::Prompt) -> String {
    format!("{}{}", p.system.as_deref().unwrap_or(""), p.user)
}

#[test]
fn prompt_token_counts_are_exact_under_the_fleet_tokenizer() {
    for spec in [w1(0.0), w3(None)] {
        let w = Workload::build(&spec, 42);
        for i in 0..200 {
            let p = w.request(i);
            assert_eq!(
                count_tokens(&prompt_text(&p)),
                p.prompt_tokens as usize,
                "request {i}"
            );
        }
    }
}

#[test]
fn requests_of_one_group_share_the_whole_context_as_a_token_prefix() {
    let w = Workload::build(&w1(0.0), 1);
    let reqs: Vec<_> = (0..100).map(|i| w.request(i)).collect();
    let a = reqs[0].clone();
    let b = reqs[1..]
        .iter()
        .find(|r| r.group == a.group)
        .expect("another request of the same group");
    let (ta, tb) = (tokenize(&prompt_text(&a)), tokenize(&prompt_text(b)));
    let common = ta.iter().zip(&tb).take_while(|(x, y)| x == y).count();
    assert!(common >= 1500, "shared token prefix {common}");
    assert!(common < 1500 + 120, "questions differ");
    let other = reqs
        .iter()
        .find(|r| r.group != a.group)
        .expect("another group");
    let to = tokenize(&prompt_text(other));
    let common = ta.iter().zip(&to).take_while(|(x, y)| x == y).count();
    assert!(common < 10, "different groups diverge at once ({common})");
}

#[test]
fn bytes_per_token_is_about_five() {
    let w = Workload::build(&w1(0.0), 3);
    let p = w.request(0);
    let ratio = prompt_text(&p).len() as f64 / f64::from(p.prompt_tokens);
    assert!((4.0..=6.0).contains(&ratio), "{ratio}");
}

#[test]
fn zipf_groups_are_skewed_and_uniform_groups_are_not() {
    let count = |spec| {
        let w = Workload::build(&spec, 9);
        let mut c = [0u32; 8];
        for i in 0..8000 {
            c[w.request(i).group.unwrap() as usize] += 1;
        }
        c
    };
    let u = count(w1(0.0));
    assert!(u.iter().all(|&n| (800..1200).contains(&n)), "{u:?}");
    let z = count(w1(1.2));
    assert!(z[0] > 3 * z[7] && z[0] > z[1], "{z:?}");
}

#[test]
fn sharegpt_lengths_are_near_their_means() {
    let w = Workload::build(&w3(None), 5);
    let n = 4000;
    let (mut inp, mut out) = (0u64, 0u64);
    for i in 0..n {
        let p = w.request(i);
        inp += u64::from(p.prompt_tokens - 100);
        out += u64::from(p.max_tokens);
    }
    let (mi, mo) = (inp as f64 / n as f64, out as f64 / n as f64);
    assert!((mi - 230.0).abs() < 15.0, "input mean {mi}");
    assert!((mo - 200.0).abs() < 12.0, "output mean {mo}");
}

#[test]
fn the_long_tail_hits_its_fraction_and_respects_its_cap() {
    let long = LongTail {
        fraction: 0.1,
        min_tokens: 2000,
        alpha: 1.5,
        max_tokens: 6000,
    };
    let w = Workload::build(&w3(Some(long)), 6);
    let n = 5000;
    let lens: Vec<u32> = (0..n).map(|i| w.request(i).prompt_tokens - 100).collect();
    let long_n = lens.iter().filter(|&&l| l >= 2000).count() as f64 / n as f64;
    assert!((long_n - 0.1).abs() < 0.02, "long fraction {long_n}");
    assert!(lens.iter().all(|&l| l <= 6000));
    assert!(lens.contains(&6000), "the cap is reached");
}
