//! The records regulation as behaviour: the working-day calendar behind the
//! 2-working-day storage deadline (R4), retention classes (R5),
//! confidentiality marks and approved export (R6), and the compliance
//! report a records officer hands in.

pub mod calendar;
