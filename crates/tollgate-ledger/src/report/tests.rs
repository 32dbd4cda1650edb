//! Report tests on a fixed set of records whose totals and rankings are worked out by hand.

use super::*;
use crate::record::tests::sample;

const SINCE: i64 = 1_795_305_600_000; // 2026-11-22T00:00:00Z
const UNTIL: i64 = SINCE + 86_400_000;

fn rec(id: &str, tenant: &str, key: &str, model: &str, p: u64, c: u64, status: u16) -> Record {
    let mut r = sample(id, SINCE + 1000);
    r.tenant = tenant.into();
    r.key_id = key.into();
    r.model = model.into();
    r.prompt_tokens = p;
    r.completion_tokens = c;
    r.status = status;
    r
}

/// acme 200 tokens / 2 requests; beta 100 / 2; delta 100 / 1; gamma 100 / 1.
fn fixture() -> Vec<Record> {
    let mut outside = rec("late", "acme", "k1", "m-big", 1000, 1000, 200);
    outside.ts_ms = UNTIL;
    vec![
        rec("1", "acme", "k1", "m-big", 100, 50, 200),
        rec("2", "acme", "k1", "m-big", 30, 20, 500),
        rec("3", "beta", "k2", "m-small", 80, 20, 200),
        rec("4", "beta", "k3", "m-small", 0, 0, 429),
        rec("5", "gamma", "k4", "m-big", 60, 40, 200),
        rec("6", "delta", "k5", "m-small", 100, 0, 200),
        outside,
    ]
}

fn names(t: &GroupTable) -> Vec<&str> {
    t.top.iter().map(|r| r.name.as_str()).collect()
}

fn usage(requests: u64, errors: u64, p: u64, c: u64) -> Usage {
    Usage {
        requests,
        errors,
        prompt_tokens: p,
        completion_tokens: c,
        total_tokens: p + c,
    }
}

#[test]
fn totals_count_only_records_in_range() {
    let r = report(&fixture(), &[], 10, SINCE, UNTIL);
    assert_eq!(r.totals, usage(6, 2, 370, 130));
    assert!(r.by.is_empty());
    assert_eq!(r.since, "2026-11-22T00:00:00Z");
    assert_eq!(r.until, "2026-11-23T00:00:00Z");
}

#[test]
fn top_n_ranks_by_tokens_then_requests_then_name_and_sums_the_rest() {
    let r = report(&fixture(), &[GroupBy::Tenant], 2, SINCE, UNTIL);
    let t = &r.by[0];
    assert_eq!(t.by, GroupBy::Tenant);
    assert_eq!(t.groups, 4);
    assert_eq!(names(t), ["acme", "beta"]);
    assert_eq!(t.top[0].usage, usage(2, 1, 130, 70));
    assert_eq!(t.top[0].share_pct, 40.0);
    assert_eq!(t.top[1].usage, usage(2, 1, 80, 20));
    assert_eq!(t.top[1].share_pct, 20.0);
    let other = t.other.as_ref().unwrap();
    assert_eq!(other.name, "(other)");
    assert_eq!(other.usage, usage(2, 0, 160, 40));
    assert_eq!(other.share_pct, 40.0);
    assert_eq!(t.other_groups, 2);
}

#[test]
fn ties_on_tokens_and_requests_are_broken_by_name() {
    let r = report(
        &fixture(),
        &[GroupBy::Tenant, GroupBy::Key],
        0,
        SINCE,
        UNTIL,
    );
    assert_eq!(names(&r.by[0]), ["acme", "beta", "delta", "gamma"]);
    assert_eq!(names(&r.by[1]), ["k1", "k2", "k4", "k5", "k3"]);
    assert!(
        r.by.iter()
            .all(|t| t.other.is_none() && t.other_groups == 0)
    );
}

#[test]
fn model_table_and_tables_keep_requested_order() {
    let r = report(
        &fixture(),
        &[GroupBy::Model, GroupBy::Tenant],
        1,
        SINCE,
        UNTIL,
    );
    assert_eq!(r.by[0].by, GroupBy::Model);
    assert_eq!(names(&r.by[0]), ["m-big"]);
    assert_eq!(r.by[0].top[0].usage, usage(3, 1, 190, 110));
    assert_eq!(r.by[0].other.as_ref().unwrap().usage, usage(3, 1, 180, 20));
    assert_eq!(r.by[1].by, GroupBy::Tenant);
}

#[test]
fn top_larger_than_group_count_lists_all_without_other() {
    let r = report(&fixture(), &[GroupBy::Model], 10, SINCE, UNTIL);
    assert_eq!(names(&r.by[0]), ["m-big", "m-small"]);
    assert!(r.by[0].other.is_none());
}

#[test]
fn project_and_consumer_are_qualified_by_their_parents() {
    let mut anon = rec("a", "-", "-", "m", 1, 1, 401);
    anon.project = "-".into();
    anon.consumer = "-".into();
    let records = vec![rec("1", "acme", "k1", "m", 5, 5, 200), anon];
    let r = report(
        &records,
        &[GroupBy::Project, GroupBy::Consumer],
        0,
        SINCE,
        UNTIL,
    );
    assert_eq!(names(&r.by[0]), ["acme/search", "-"]);
    assert_eq!(names(&r.by[1]), ["acme/search/web", "-"]);
}

#[test]
fn empty_range_has_zero_totals_and_no_shares_to_divide() {
    let r = report(&fixture(), &[GroupBy::Tenant], 3, UNTIL + 1, UNTIL + 2);
    assert_eq!(r.totals, Usage::default());
    assert_eq!(r.by[0].groups, 0);
    assert!(r.by[0].top.is_empty());
    assert_eq!(
        r.to_table(),
        "usage 2026-11-23T00:00:00.001Z .. 2026-11-23T00:00:00.002Z\nno requests in range\n"
    );
}

#[test]
fn zero_tokens_give_zero_share_not_nan() {
    let records = vec![rec("1", "acme", "k1", "m", 0, 0, 200)];
    let r = report(&records, &[GroupBy::Tenant], 0, SINCE, UNTIL);
    assert_eq!(r.by[0].top[0].share_pct, 0.0);
    assert!(r.to_json().contains("\"share_pct\": 0.0"));
}

#[test]
fn table_matches_golden_and_columns_align() {
    let r = report(&fixture(), &[GroupBy::Tenant], 2, SINCE, UNTIL).with_skipped(1);
    let want = "\
usage 2026-11-22T00:00:00Z .. 2026-11-23T00:00:00Z

       REQUESTS  ERRORS  PROMPT  COMPLETION  TOTAL
total         6       2     370         130    500

by tenant: top 2 of 4 groups
TENANT            REQUESTS  ERRORS  PROMPT  COMPLETION  TOTAL   SHARE
acme                     2       1     130          70    200  40.00%
beta                     2       1      80          20    100  20.00%
(2 other groups)         2       0     160          40    200  40.00%

warning: 1 unreadable ledger lines skipped; figures may be incomplete
";
    let got = r.to_table();
    assert_eq!(got, want, "\n{got}");
    // Every line of a table block has the same width: numbers are right-aligned to one edge.
    for block in got.split("\n\n").skip(1).take(2) {
        let lines: Vec<&str> = block.lines().filter(|l| !l.starts_with("by ")).collect();
        let w = lines[0].len();
        assert!(lines.iter().all(|l| l.len() == w), "{block}");
    }
}

#[test]
fn json_has_the_documented_shape() {
    let r = report(&fixture(), &[GroupBy::Key], 1, SINCE, UNTIL);
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["since"], "2026-11-22T00:00:00Z");
    assert_eq!(v["since_ms"], SINCE);
    assert_eq!(v["until_ms"], UNTIL);
    assert_eq!(v["skipped_lines"], 0);
    assert_eq!(v["totals"]["requests"], 6);
    assert_eq!(v["totals"]["total_tokens"], 500);
    let t = &v["by"][0];
    assert_eq!(t["by"], "key");
    assert_eq!(t["groups"], 5);
    assert_eq!(t["other_groups"], 4);
    let row = &t["top"][0];
    assert_eq!(row["name"], "k1");
    assert_eq!(row["requests"], 2);
    assert_eq!(row["errors"], 1);
    assert_eq!(row["prompt_tokens"], 130);
    assert_eq!(row["completion_tokens"], 70);
    assert_eq!(row["total_tokens"], 200);
    assert_eq!(row["share_pct"], 40.0);
    assert_eq!(t["other"]["name"], "(other)");
    let none = report(&fixture(), &[GroupBy::Key], 0, SINCE, UNTIL);
    let v: serde_json::Value = serde_json::from_str(&none.to_json()).unwrap();
    assert!(v["by"][0]["other"].is_null());
}

#[test]
fn group_by_parses_cli_names_and_rejects_others() {
    for g in GroupBy::ALL {
        assert_eq!(g.as_str().parse::<GroupBy>(), Ok(g));
        assert_eq!(g.to_string(), g.as_str());
    }
    assert_eq!("Key".parse::<GroupBy>(), Ok(GroupBy::Key));
    let err = "user".parse::<GroupBy>().unwrap_err();
    assert!(err.contains("\"user\"") && err.contains("tenant"), "{err}");
}
