//! The exposure of each step, and the mirror's load on the canary, for `sluice plan`.

use crate::api::Step;
use cohort::City;
use std::collections::BTreeMap;

/// One line of `sluice plan`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepExposure {
    pub step: usize,
    pub eligible_cities: Vec<String>,
    /// Share of the city table's population living in eligible cities, 0..=1.
    pub population_share: f64,
    /// Expected share of users exposed, assuming users spread like population: share x percent.
    pub user_share: f64,
    /// Share of the rollout's requests (of the mirrored methods) copied to the canary, 0..=1: the
    /// mirror's load on the canary. 0 in a user step.
    pub copied_share: f64,
}

pub fn exposure(steps: &[Step], cities: &BTreeMap<String, City>) -> Vec<StepExposure> {
    let total: u64 = cities.values().map(|c| c.population).sum();
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let eligible: Vec<(&String, &City)> = cities
                .iter()
                .filter(|(_, c)| {
                    s.regions.is_empty()
                        || s.regions.iter().any(|r| r.eq_ignore_ascii_case(&c.region))
                })
                .filter(|(_, c)| s.max_city_population.is_none_or(|cut| c.population <= cut))
                .collect();
            let population: u64 = eligible.iter().map(|(_, c)| c.population).sum();
            let population_share = if total == 0 {
                0.0
            } else {
                population as f64 / total as f64
            };
            StepExposure {
                step: i,
                eligible_cities: eligible.iter().map(|(k, _)| (*k).clone()).collect(),
                population_share,
                // A mirror step's percent is 0: it exposes no user, whatever it copies.
                user_share: population_share * s.percent / 100.0,
                copied_share: s.mirror.as_ref().map_or(0.0, |m| m.percent / 100.0),
            }
        })
        .collect()
}
