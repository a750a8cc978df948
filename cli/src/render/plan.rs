//! `sluice plan`: the exposure of each step.

use rollout::api::Step;
use rollout::plan::StepExposure;

/// `sluice plan`: one line per step.
pub fn plan_table(steps: &[Step], exposure: &[StepExposure]) -> String {
    let mut out = format!(
        "{:>4} {:>8} {:<24} {:>10} {:>7} {:>11} {:>10}  {}\n",
        "STEP", "PERCENT", "REGIONS", "CUTOFF", "CITIES", "POPULATION", "USERS", "GATE"
    );
    for (step, e) in steps.iter().zip(exposure) {
        let regions = if step.regions.is_empty() {
            "*".to_string()
        } else {
            step.regions.join(",")
        };
        let cutoff = step
            .max_city_population
            .map_or("*".to_string(), |c| c.to_string());
        out.push_str(&format!(
            "{:>4} {:>8} {:<24} {:>10} {:>7} {:>10.2}% {:>9.4}%  {}\n",
            e.step,
            step.percent,
            regions,
            cutoff,
            e.eligible_cities.len(),
            e.population_share * 100.0,
            e.user_share * 100.0,
            if step.pause_before {
                "pause before"
            } else {
                ""
            }
        ));
    }
    out
}
