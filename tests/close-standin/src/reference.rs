//! Reference answers computed straight from the dataset, independently of the tool code paths, for tests
//! to compare with what comes through the connector.
//!
//! Definitions (the stand-in's; Close reports may define them differently):
//! * "open" = status type `active`; money is opportunity `value` in integer cents as stored (no
//!   annualisation);
//! * "weighted" = `value × confidence / 100` rounded half up per opportunity ([`crate::data::expected`]);
//! * an opportunity's status at an instant comes from its `OpportunityStatusChange` activities (the last
//!   change at or before the instant, else the first change's old status, else its current status);
//!   it does not exist before `date_created`;
//! * "now" is [`Dataset::as_of`] (midnight UTC starting the anchor day).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use crate::data::{
    day_start, expected, Dataset, Opportunity, OpportunityStatus, OpportunityStatusChange,
    StatusType,
};

/// Opportunities whose current status is `status_id`, sorted by id.
pub fn opportunities_by_status<'a>(ds: &'a Dataset, status_id: &str) -> Vec<&'a Opportunity> {
    let mut v: Vec<&Opportunity> = ds
        .opportunities
        .iter()
        .filter(|o| o.status_id == status_id)
        .collect();
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

/// Count of opportunities per current status id.
pub fn opportunity_count_by_status(ds: &Dataset) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for o in &ds.opportunities {
        *m.entry(o.status_id.clone()).or_insert(0) += 1;
    }
    m
}

/// Open pipeline per owner: sum of `value` (cents) of active opportunities, keyed by `user_…` id. Users
/// without open opportunities are absent.
pub fn open_pipeline_value_per_user(ds: &Dataset) -> BTreeMap<String, i64> {
    open_pipeline_value_per_user_in(ds, None)
}

/// [`open_pipeline_value_per_user`] for one pipeline (`None`: every pipeline).
pub fn open_pipeline_value_per_user_in(ds: &Dataset, pipeline_id: Option<&str>) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for o in ds
        .opportunities
        .iter()
        .filter(|o| o.status_type == StatusType::Active && pipeline_id.is_none_or(|p| o.pipeline_id == p))
    {
        *m.entry(o.user_id.clone()).or_insert(0) += o.value;
    }
    m
}

/// The opportunity's status changes, oldest first.
pub fn status_history<'a>(
    ds: &'a Dataset,
    opportunity_id: &str,
) -> Vec<(DateTime<Utc>, &'a OpportunityStatusChange)> {
    let mut v: Vec<(DateTime<Utc>, &OpportunityStatusChange)> = ds
        .activities
        .iter()
        .filter_map(|a| {
            a.opportunity_status_change()
                .filter(|c| c.opportunity_id == opportunity_id)
                .map(|c| (a.activity_at, c))
        })
        .collect();
    v.sort_by_key(|(t, _)| *t);
    v
}

/// When the opportunity entered its current status: its last status change, else its creation.
pub fn entered_current_status_at(ds: &Dataset, o: &Opportunity) -> DateTime<Utc> {
    status_history(ds, &o.id)
        .last()
        .map(|(t, _)| *t)
        .unwrap_or(o.date_created)
}

/// An opportunity and how long it has been in its current status.
#[derive(Clone, Debug, PartialEq)]
pub struct Dwell<'a> {
    pub opportunity: &'a Opportunity,
    pub since: DateTime<Utc>,
    pub duration: Duration,
}

/// Opportunities currently in `status_id` for strictly longer than `days` days as of [`Dataset::as_of`],
/// longest first.
pub fn in_status_longer_than<'a>(ds: &'a Dataset, status_id: &str, days: i64) -> Vec<Dwell<'a>> {
    let now = ds.as_of();
    let mut v: Vec<Dwell> = ds
        .opportunities
        .iter()
        .filter(|o| o.status_id == status_id)
        .map(|o| {
            let since = entered_current_status_at(ds, o);
            Dwell {
                opportunity: o,
                since,
                duration: now - since,
            }
        })
        .filter(|d| d.duration > Duration::days(days))
        .collect();
    v.sort_by(|a, b| {
        a.since
            .cmp(&b.since)
            .then_with(|| a.opportunity.id.cmp(&b.opportunity.id))
    });
    v
}

/// Leads of one source: how many were created in the window and how many of those have a won deal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceConversion {
    pub leads: usize,
    pub won_leads: usize,
}

impl SourceConversion {
    /// `won_leads / leads` (0 when there are no leads).
    pub fn rate(&self) -> f64 {
        if self.leads == 0 {
            0.0
        } else {
            self.won_leads as f64 / self.leads as f64
        }
    }
}

/// Lead-source conversion: leads created in `[start, end)` grouped by `source`, and how many of them
/// reached Won (have at least one opportunity whose current status type is won).
pub fn lead_source_conversion(
    ds: &Dataset,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> BTreeMap<String, SourceConversion> {
    lead_source_conversion_in(ds, start, end, None)
}

/// [`lead_source_conversion`] counting only deals won in one pipeline (`None`: any pipeline).
pub fn lead_source_conversion_in(
    ds: &Dataset,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    pipeline_id: Option<&str>,
) -> BTreeMap<String, SourceConversion> {
    let mut m: BTreeMap<String, SourceConversion> = BTreeMap::new();
    for l in ds
        .leads
        .iter()
        .filter(|l| l.date_created >= start && l.date_created < end)
    {
        let e = m.entry(l.source.clone()).or_default();
        e.leads += 1;
        if ds
            .opportunities
            .iter()
            .any(|o| {
                o.lead_id == l.id
                    && o.status_type == StatusType::Won
                    && pipeline_id.is_none_or(|p| o.pipeline_id == p)
            })
        {
            e.won_leads += 1;
        }
    }
    m
}

/// The opportunity's status at instant `at` (`None` before it was created).
pub fn status_at<'a>(
    ds: &'a Dataset,
    o: &Opportunity,
    at: DateTime<Utc>,
) -> Option<&'a OpportunityStatus> {
    if at < o.date_created {
        return None;
    }
    let history = status_history(ds, &o.id);
    let id = match history.iter().rev().find(|(t, _)| *t <= at) {
        Some((_, c)) => c.new_status_id.clone(),
        None => history
            .first()
            .map(|(_, c)| c.old_status_id.clone())
            .unwrap_or_else(|| o.status_id.clone()),
    };
    ds.opportunity_status(&id)
}

/// Weighted open pipeline at instant `at`: Σ `value × confidence / 100` (cents) over opportunities that
/// existed and were active at `at`.
pub fn weighted_pipeline_at(ds: &Dataset, at: DateTime<Utc>) -> i64 {
    weighted_pipeline_at_in(ds, at, None)
}

/// [`weighted_pipeline_at`] for one pipeline (`None`: every pipeline).
pub fn weighted_pipeline_at_in(ds: &Dataset, at: DateTime<Utc>, pipeline_id: Option<&str>) -> i64 {
    ds.opportunities
        .iter()
        .filter(|o| {
            status_at(ds, o, at).is_some_and(|s| {
                s.status_type == StatusType::Active
                    && pipeline_id.is_none_or(|p| s.pipeline_id == p)
            })
        })
        .map(|o| expected(o.value, o.confidence))
        .sum()
}

/// `weighted_pipeline_at(to) - weighted_pipeline_at(from)`.
pub fn weighted_pipeline_change(ds: &Dataset, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    weighted_pipeline_at(ds, to) - weighted_pipeline_at(ds, from)
}

/// Midnight UTC on the Monday of the week containing `d`.
pub fn week_start(d: NaiveDate) -> DateTime<Utc> {
    day_start(d - Duration::days(i64::from(d.weekday().num_days_from_monday())))
}

/// `[start, end)` of the calendar quarter before the one containing `d`.
pub fn previous_quarter(d: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let q_start_month = (d.month() - 1) / 3 * 3 + 1;
    let this_q = NaiveDate::from_ymd_opt(d.year(), q_start_month, 1).unwrap_or(d);
    let (y, m) = if q_start_month == 1 {
        (d.year() - 1, 10)
    } else {
        (d.year(), q_start_month - 3)
    };
    let prev_q = NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(d);
    (day_start(prev_q), day_start(this_q))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DatasetConfig;

    fn ds(seed: u64, anchor: (i32, u32, u32)) -> Dataset {
        Dataset::generate(DatasetConfig {
            seed,
            anchor: NaiveDate::from_ymd_opt(anchor.0, anchor.1, anchor.2).unwrap(),
        })
    }

    #[test]
    fn the_history_reproduces_every_current_status() {
        let d = ds(42, (2026, 3, 12));
        for o in &d.opportunities {
            assert_eq!(
                status_at(&d, o, d.as_of()).map(|s| s.id.as_str()),
                Some(o.status_id.as_str()),
                "{}",
                o.id
            );
        }
    }

    #[test]
    fn the_weighted_pipeline_now_is_the_sum_over_open_deals() {
        let d = ds(42, (2026, 3, 12));
        let direct: i64 = d
            .opportunities
            .iter()
            .filter(|o| o.status_type == StatusType::Active)
            .map(|o| o.expected_value())
            .sum();
        assert_eq!(weighted_pipeline_at(&d, d.as_of()), direct);
    }

    #[test]
    fn product_questions_have_non_trivial_answers_for_several_seeds_and_anchors() {
        for (seed, anchor) in [
            (42, (2026, 3, 12)),
            (1, (2025, 11, 3)),
            (7, (2026, 7, 1)),
            (123, (2026, 1, 5)),
        ] {
            let d = ds(seed, anchor);
            let proposal = d.opportunity_status_by_label("Sales", "Proposal").unwrap();
            let in_proposal = opportunities_by_status(&d, &proposal.id).len();
            let long = in_status_longer_than(&d, &proposal.id, 14).len();
            assert!(
                long >= 1 && long < in_proposal,
                "seed {seed}: {long} of {in_proposal} in Proposal > 14 days"
            );

            let (qs, qe) = previous_quarter(d.config.anchor);
            let conv = lead_source_conversion(&d, qs, qe);
            let leads: usize = conv.values().map(|c| c.leads).sum();
            let won: usize = conv.values().map(|c| c.won_leads).sum();
            assert!(
                conv.len() >= 4 && leads >= 30 && won >= 1 && won < leads,
                "seed {seed}: {conv:?}"
            );

            let per_user = open_pipeline_value_per_user(&d);
            assert!(per_user.len() >= 5, "seed {seed}: {per_user:?}");

            let week_ago = d.as_of() - Duration::days(7);
            assert_ne!(
                weighted_pipeline_change(&d, week_ago, d.as_of()),
                0,
                "seed {seed}"
            );
            let closed_last_week = d
                .opportunities
                .iter()
                .filter(|o| o.status_type != StatusType::Active && o.date_updated >= week_ago)
                .count();
            assert!(closed_last_week >= 1, "seed {seed}");
        }
    }

    #[test]
    fn renewals_share_the_proposal_label_so_the_pipeline_matters() {
        for (seed, anchor) in [(42, (2026, 11, 18)), (42, (2026, 3, 12)), (7, (2026, 7, 1))] {
            let d = ds(seed, anchor);
            let sales = d.opportunity_status_by_label("Sales", "Proposal").unwrap();
            let renewals = d
                .opportunity_status_by_label(crate::data::RENEWALS_PIPELINE, "Proposal")
                .expect("the Renewals pipeline has a Proposal stage too");
            assert_ne!(sales.id, renewals.id);
            assert_eq!(renewals.status_type, StatusType::Active);
            let long_sales = in_status_longer_than(&d, &sales.id, 14).len();
            let long_renewals = in_status_longer_than(&d, &renewals.id, 14).len();
            assert!(
                long_sales >= 1 && long_renewals >= 1,
                "seed {seed} {anchor:?}: {long_sales} Sales and {long_renewals} Renewals deals in Proposal > 14 days"
            );
            let renewals_pipe = d.pipeline_by_name(crate::data::RENEWALS_PIPELINE).unwrap();
            let sales_pipe = d.pipeline_by_name("Sales").unwrap();
            let all = open_pipeline_value_per_user(&d);
            let only_sales = open_pipeline_value_per_user_in(&d, Some(&sales_pipe.id));
            let only_renewals = open_pipeline_value_per_user_in(&d, Some(&renewals_pipe.id));
            for (user, v) in &all {
                assert_eq!(
                    *v,
                    only_sales.get(user).copied().unwrap_or(0) + only_renewals.get(user).copied().unwrap_or(0)
                );
            }
            assert_ne!(all, only_sales, "seed {seed}: renewals add open pipeline");
            let now = d.as_of();
            assert_eq!(
                weighted_pipeline_at(&d, now),
                weighted_pipeline_at_in(&d, now, Some(&sales_pipe.id))
                    + weighted_pipeline_at_in(&d, now, Some(&renewals_pipe.id))
            );
        }
    }

    #[test]
    fn quarters_and_weeks_are_computed_from_the_calendar() {
        let (s, e) = previous_quarter(NaiveDate::from_ymd_opt(2026, 2, 10).unwrap());
        assert_eq!(
            (s.date_naive().to_string(), e.date_naive().to_string()),
            ("2025-10-01".into(), "2026-01-01".into())
        );
        assert_eq!(
            week_start(NaiveDate::from_ymd_opt(2026, 3, 12).unwrap())
                .date_naive()
                .to_string(),
            "2026-03-09"
        );
    }
}
