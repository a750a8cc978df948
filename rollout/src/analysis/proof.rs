//! The proof rule for tiny cohorts: below `minSamples`, a success rate fails only when the errors
//! already seen prove it below its minimum.

use crate::api::{BuiltinSli, MetricCheck};

/// Confidence that a tiny cohort's breach is real before it fails on fewer than `minSamples` requests.
const PROOF_CONFIDENCE: f64 = 0.99;

/// Below `minSamples`, a success rate fails when the errors already seen prove it below its minimum:
/// the one-sided 99% upper bound of the true success rate (Clopper-Pearson, exact for small counts)
/// is below the minimum. 20 errors in 20 requests prove it; 1 in 20 does not. Other SLIs have no
/// such count, and stay inconclusive. `requests` names what was counted ("canary requests").
pub(super) fn breach_proven(
    check: &MetricCheck,
    value: Option<f64>,
    samples: u64,
    min_samples: u64,
    requests: &str,
) -> Option<String> {
    let min = check.threshold_range.min?;
    let value = value.filter(|v| v.is_finite())?;
    if check.builtin != Some(BuiltinSli::SuccessRate) || samples == 0 {
        return None;
    }
    let errors = ((samples as f64) * (1.0 - value / 100.0))
        .round()
        .clamp(0.0, samples as f64) as u64;
    let upper = 100.0 * success_upper_bound(samples - errors, samples, 1.0 - PROOF_CONFIDENCE);
    (upper < min).then(|| {
        format!(
            "{errors} of {samples} {requests} failed ({min_samples} needed to judge): the success \
             rate is at most {upper:.1}% ({:.0}% confidence), below the minimum {min}",
            PROOF_CONFIDENCE * 100.0
        )
    })
}

/// The p at which seeing at most `successes` of `n` has probability `alpha` (bisection on the binomial
/// CDF, in log space so that large `n` does not underflow).
fn success_upper_bound(successes: u64, n: u64, alpha: f64) -> f64 {
    if successes >= n {
        return 1.0;
    }
    let (mut low, mut high) = (0.0_f64, 1.0_f64);
    for _ in 0..60 {
        let p = (low + high) / 2.0;
        if binomial_cdf(successes, n, p) > alpha {
            low = p;
        } else {
            high = p;
        }
    }
    high
}

/// P(X <= k) for X ~ Binomial(n, p), 0 < p < 1.
fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    let (ln_p, ln_q) = (p.ln(), (1.0 - p).ln());
    // ln of C(n, i) p^i q^(n-i), built term by term.
    let mut ln_term = n as f64 * ln_q;
    let mut ln_sum = ln_term;
    for i in 1..=k {
        ln_term += ((n - i + 1) as f64).ln() - (i as f64).ln() + ln_p - ln_q;
        let (a, b) = (ln_sum.max(ln_term), ln_sum.min(ln_term));
        ln_sum = a + (b - a).exp().ln_1p();
    }
    ln_sum.exp()
}
