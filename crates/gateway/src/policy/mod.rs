//! The records regulation as behaviour: the working-day calendar behind the
//! 2-working-day storage deadline (R4), retention classes (R5),
//! confidentiality marks and approved export (R6), and the compliance
//! report a records officer hands in.

pub mod calendar;
pub mod compliance;
pub use custody_format::confidentiality;
pub mod deadline;
pub mod recompute;
pub mod retention;

use std::sync::{Arc, RwLock};

/// The policy a gateway applies, loaded at start. Clones share the
/// calendar, which is replaced when `calendar_dir` changes while the
/// gateway runs (`recompute`).
#[derive(Debug, Clone)]
pub struct Policy {
    calendar: Arc<RwLock<Arc<calendar::Calendar>>>,
    /// The unit's offset: working days are local days.
    pub offset: time::UtcOffset,
    /// Working days after the recording's end by which it must be stored (R4: 2).
    pub working_days: u32,
}

impl Policy {
    pub fn from_config(cfg: &crate::config::Config) -> Result<Policy, calendar::CalendarError> {
        let calendar = match &cfg.policy.calendar_dir {
            Some(d) => calendar::Calendar::with_dir(d)?,
            None => calendar::Calendar::builtin(),
        };
        Ok(Policy {
            calendar: Arc::new(RwLock::new(Arc::new(calendar))),
            offset: cfg.utc_offset(),
            working_days: cfg.policy.working_days,
        })
    }

    /// The calendar in force now.
    pub fn calendar(&self) -> Arc<calendar::Calendar> {
        self.calendar.read().expect("calendar lock").clone()
    }

    /// Puts `c` in force for every clone of this policy.
    pub fn set_calendar(&self, c: calendar::Calendar) {
        *self.calendar.write().expect("calendar lock") = Arc::new(c);
    }
}
