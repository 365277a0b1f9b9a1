//! Confidentiality marks (R6): a recording touching state secrets, trade
//! secrets or personal privacy is shown and exported only to viewers
//! cleared for every mark it carries.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mark {
    StateSecret,
    TradeSecret,
    PersonalPrivacy,
}

impl Mark {
    pub fn describe(self) -> &'static str {
        match self {
            Mark::StateSecret => "state secret",
            Mark::TradeSecret => "trade secret",
            Mark::PersonalPrivacy => "personal privacy",
        }
    }
}

/// Whether someone cleared for `clearances` may see a recording `marked`.
pub fn cleared(clearances: &[Mark], marked: &[Mark]) -> bool {
    marked.iter().all(|m| clearances.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mark_needs_its_clearance() {
        use Mark::*;
        // (clearances, marks, may see)
        let table: &[(&[Mark], &[Mark], bool)] = &[
            (&[], &[], true),
            (&[], &[PersonalPrivacy], false),
            (&[PersonalPrivacy], &[PersonalPrivacy], true),
            (&[PersonalPrivacy], &[PersonalPrivacy, TradeSecret], false),
            (
                &[StateSecret, TradeSecret, PersonalPrivacy],
                &[StateSecret, TradeSecret],
                true,
            ),
        ];
        for (c, m, ok) in table {
            assert_eq!(cleared(c, m), *ok, "{c:?} {m:?}");
        }
        assert_eq!(serde_json::to_value(StateSecret).unwrap(), "state-secret");
    }
}
