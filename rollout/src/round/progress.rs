//! A rollout's round as it goes through its batch's phases: loaded, checked, decided, pushed.

use super::types::Outcome;
use super::{decide, invalid};
use crate::api::CohortRolloutStatus;
use crate::error::{Error, Result};

pub(super) enum Progress {
    /// Ended early, or finished.
    Done(Result<Outcome>),
    Loaded(Option<CohortRolloutStatus>),
    /// The document's owner does not let it write there.
    Unadmitted(Option<CohortRolloutStatus>, Error),
    Passed(Box<decide::Checked>),
    Refusing(Box<invalid::Refusal>),
    Decided(Box<decide::Decided>),
    Refused(Box<invalid::Refused>),
}
