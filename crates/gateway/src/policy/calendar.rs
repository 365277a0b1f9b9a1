//! Working days in mainland China: the official holiday schedule with its
//! adjusted working weekends (调休), for the 2-working-day deadline.
//!
//! R4 says a recording must be stored "within 2 working days". Whether a day is
//! a working day is decided each year by the State Council: public holidays
//! turn weekdays into rest days, and some Saturdays and Sundays become working
//! days to make the holiday blocks longer. Nothing about that can be computed, so the
//! calendar only knows the years whose official schedule it holds (copied
//! verbatim from NateScarlet/holiday-cn, see `calendar/cn/SOURCE.md`) and
//! refuses to answer for any other year rather than guess Mon–Fri.
//!
//! Every [`Deadline`] records the [`Calendar::version`] it was computed with
//! and the year files it used (file, SHA-256, official papers), so a
//! deadline can be re-checked later against exactly the same data.
//!
//! A deadline that needs a year whose schedule is not loaded can still be
//! computed *provisionally* ([`Calendar::provisional_deadline`]): that
//! year's Saturdays and Sundays are taken as its only rest days, and the
//! deadline names the year, so it is assessed again once the schedule is
//! added (`crate::policy::recompute`).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Month, OffsetDateTime, UtcOffset, Weekday};

/// The year files built into the binary, in year order. A new year is one
/// more line here and one more file in `calendar/cn/`.
const BUILTIN: &[(i32, &str)] = &[
    (2020, include_str!("calendar/cn/2020.json")),
    (2021, include_str!("calendar/cn/2021.json")),
    (2022, include_str!("calendar/cn/2022.json")),
    (2023, include_str!("calendar/cn/2023.json")),
    (2024, include_str!("calendar/cn/2024.json")),
    (2025, include_str!("calendar/cn/2025.json")),
    (2026, include_str!("calendar/cn/2026.json")),
];

/// The longest paper reference a year file may cite.
const MAX_PAPER_LEN: usize = 1024;

/// The largest year file read from `calendar_dir` (a year's schedule is a
/// few KiB).
const MAX_YEAR_FILE: u64 = 1 << 20;

/// Parsed once: the built-in data cannot change while the process runs.
static BUILTIN_CALENDAR: LazyLock<Calendar> = LazyLock::new(|| {
    let files = BUILTIN
        .iter()
        .map(|&(year, text)| (year, (builtin_label(year), text.as_bytes().to_vec())))
        .collect();
    Calendar::from_files(files).expect("built-in holiday data is valid (checked by unit tests)")
});

fn builtin_label(year: i32) -> String {
    format!("built-in cn/{year}.json")
}

#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// The schedule for `year` has not been published (or not loaded): a
    /// deadline computed by guessing could be wrong in either direction.
    #[error("no official holiday schedule for {year} in calendar {calendar}: refusing to guess")]
    UnknownYear { year: i32, calendar: String },
    /// A year file that is not a plausible official schedule.
    #[error("invalid holiday schedule {file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("reading holiday schedules from {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// RFC 3339 cannot write an offset with seconds, and no unit keeps one.
    #[error("local offset {0} has seconds: not a usable unit offset")]
    Offset(UtcOffset),
}

/// The official holiday schedule for a contiguous range of years.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// The years whose schedule was loaded; contiguous.
    years: BTreeSet<i32>,
    /// Where each year's schedule came from.
    sources: BTreeMap<i32, ScheduleSource>,
    /// The exceptions to "Mon–Fri work, Sat/Sun rest": true for an adjusted
    /// working day (usually a weekend), false for a holiday.
    exceptions: BTreeMap<Date, bool>,
    version: String,
}

/// A year file as published by holiday-cn. Unknown fields are rejected so
/// that a format change upstream is noticed instead of half-read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    #[serde(rename = "$schema", default)]
    _schema: Option<String>,
    #[serde(rename = "$id", default)]
    _id: Option<String>,
    year: i32,
    papers: Vec<String>,
    days: Vec<DayEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DayEntry {
    #[serde(rename = "name")]
    _name: String,
    date: String,
    #[serde(rename = "isOffDay")]
    is_off_day: bool,
}

impl Calendar {
    /// The schedule built into the binary (include_str! of each year file).
    pub fn builtin() -> Calendar {
        BUILTIN_CALENDAR.clone()
    }

    /// Built-in years plus/overridden by `<dir>/<year>.json` files in the
    /// same format, so a schedule published after this build (usually in
    /// November for the next year) can be added without a new release.
    ///
    /// Only files named `<four digits>.json` are read; anything else (a
    /// `SOURCE.md`, upstream's `schema.json` or `.ics` files) is ignored. An
    /// empty schedule (upstream's placeholder for an unpublished year) and a
    /// gap between years are errors.
    pub fn with_dir(dir: &Path) -> Result<Calendar, CalendarError> {
        let io = |source| CalendarError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut files: BTreeMap<i32, (String, Vec<u8>)> = BUILTIN
            .iter()
            .map(|&(year, text)| (year, (builtin_label(year), text.as_bytes().to_vec())))
            .collect();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let Some(year) = year_file_name(&path) else {
                continue;
            };
            if !path.is_file() {
                continue;
            }
            let io = |source| CalendarError::Io {
                path: path.clone(),
                source,
            };
            if std::fs::metadata(&path).map_err(io)?.len() > MAX_YEAR_FILE {
                return Err(CalendarError::Invalid {
                    file: path.display().to_string(),
                    reason: format!("larger than {MAX_YEAR_FILE} bytes: not a year's schedule"),
                });
            }
            let bytes = std::fs::read(&path).map_err(io)?;
            files.insert(year, (path.display().to_string(), bytes));
        }
        Calendar::from_files(files)
    }

    /// e.g. "cn-holiday 2020-2026 sha256:<first 12 hex>", the SHA-256 over
    /// the year files' bytes concatenated in year order (so `cat 20*.json |
    /// sha256sum` reproduces it). It changes whenever the data changes and
    /// is recorded with every deadline.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// First..=last known year; always contiguous.
    pub fn years(&self) -> RangeInclusive<i32> {
        let first = *self.years.first().expect("a calendar has years");
        let last = *self.years.last().expect("a calendar has years");
        first..=last
    }

    pub fn is_working_day(&self, d: Date) -> Result<bool, CalendarError> {
        if !self.years.contains(&d.year()) {
            return Err(self.unknown(d.year()));
        }
        Ok(match self.exceptions.get(&d) {
            Some(&working) => working,
            None => !is_weekend(d),
        })
    }

    /// The date `n` working days after `d` (d itself not counted; n=0
    /// returns d). Only the days after `d` are looked up, so `d` itself may
    /// lie just before the first known year.
    pub fn add_working_days(&self, d: Date, n: u32) -> Result<Date, CalendarError> {
        self.count_working_days(d, n, false).map(|c| c.last)
    }

    /// As [`Calendar::add_working_days`]; with `provisional`, a day of a
    /// year whose schedule is not loaded counts as a working day unless it
    /// is a Saturday or Sunday, and the year is noted.
    fn count_working_days(
        &self,
        d: Date,
        n: u32,
        provisional: bool,
    ) -> Result<Count, CalendarError> {
        let mut count = Count {
            last: d,
            known: BTreeSet::new(),
            assumed: BTreeSet::new(),
        };
        let mut left = n;
        while left > 0 {
            let day = count
                .last
                .next_day()
                .ok_or_else(|| self.unknown(count.last.year().saturating_add(1)))?;
            count.last = day;
            let working = match self.is_working_day(day) {
                Ok(w) => {
                    count.known.insert(day.year());
                    w
                }
                Err(CalendarError::UnknownYear { year, .. }) if provisional => {
                    count.assumed.insert(year);
                    !is_weekend(day)
                }
                Err(e) => return Err(e),
            };
            if working {
                left -= 1;
            }
        }
        Ok(count)
    }

    /// The storage deadline for a recording that ended at `ended` (any
    /// offset), in the unit's local `offset`: the end (24:00 local, i.e. the
    /// first instant of the next day) of the `n`-th working day after the
    /// local day the recording ended. The local day matters: a recording
    /// ending at 23:30 UTC ended on the next day in Beijing.
    pub fn deadline(
        &self,
        ended: OffsetDateTime,
        offset: UtcOffset,
        n: u32,
    ) -> Result<Deadline, CalendarError> {
        self.deadline_counted(ended, offset, n, false)
    }

    /// As [`Calendar::deadline`], but a year whose schedule is not loaded
    /// is counted with its weekends as the only rest days instead of
    /// refusing: the deadline then lists that year in `provisional_years`.
    /// Errors only when no date can be computed at all (an offset with
    /// seconds, or past the year 9999).
    pub fn provisional_deadline(
        &self,
        ended: OffsetDateTime,
        offset: UtcOffset,
        n: u32,
    ) -> Result<Deadline, CalendarError> {
        self.deadline_counted(ended, offset, n, true)
    }

    fn deadline_counted(
        &self,
        ended: OffsetDateTime,
        offset: UtcOffset,
        n: u32,
        provisional: bool,
    ) -> Result<Deadline, CalendarError> {
        if offset.seconds_past_minute() != 0 {
            return Err(CalendarError::Offset(offset));
        }
        let local = ended
            .checked_to_offset(offset)
            .ok_or_else(|| self.unknown(ended.year().saturating_add(1)))?;
        let count = self.count_working_days(local.date(), n, provisional)?;
        let after = count
            .last
            .next_day()
            .ok_or_else(|| self.unknown(count.last.year().saturating_add(1)))?;
        let due = after
            .midnight()
            .assume_offset(offset)
            .format(&Rfc3339)
            .map_err(|_| self.unknown(after.year()))?;
        Ok(Deadline {
            due,
            working_days: n,
            calendar: self.version.clone(),
            sources: count
                .known
                .iter()
                .filter_map(|y| self.sources.get(y).cloned())
                .collect(),
            provisional_years: count.assumed.into_iter().collect(),
        })
    }

    fn unknown(&self, year: i32) -> CalendarError {
        CalendarError::UnknownYear {
            year,
            calendar: self.version.clone(),
        }
    }

    /// Parses and validates every year file (year → label for errors,
    /// bytes) and derives the version from their bytes in year order.
    fn from_files(files: BTreeMap<i32, (String, Vec<u8>)>) -> Result<Calendar, CalendarError> {
        let mut years = BTreeSet::new();
        let mut sources = BTreeMap::new();
        let mut exceptions = BTreeMap::new();
        let mut listed_in: BTreeMap<Date, &str> = BTreeMap::new();
        let mut hash = Sha256::new();
        for (&year, (label, bytes)) in &files {
            let invalid = |reason| CalendarError::Invalid {
                file: label.clone(),
                reason,
            };
            if let Some(&prev) = years.last()
                && year != prev + 1
            {
                return Err(invalid(format!(
                    "years must be contiguous, but {year} follows {prev} ({})",
                    files[&prev].0
                )));
            }
            let (days, papers) = parse_year_file(year, bytes).map_err(invalid)?;
            sources.insert(
                year,
                ScheduleSource {
                    year,
                    file: label.clone(),
                    sha256: hex::encode(Sha256::digest(bytes)),
                    papers,
                },
            );
            for (date, working) in days {
                // Only a December date of the year before can be listed twice
                // (in both years' files); the two papers must agree on it.
                if let Some(&earlier) = exceptions.get(&date)
                    && earlier != working
                {
                    return Err(invalid(format!(
                        "{date} is {} here but {} in {}",
                        status(working),
                        status(earlier),
                        listed_in[&date]
                    )));
                }
                exceptions.insert(date, working);
                listed_in.insert(date, label);
            }
            years.insert(year);
            hash.update(bytes);
        }
        let (Some(first), Some(last)) = (years.first(), years.last()) else {
            return Err(CalendarError::Invalid {
                file: "calendar".into(),
                reason: "no year files".into(),
            });
        };
        let digest = hex::encode(hash.finalize());
        let version = format!("cn-holiday {first}-{last} sha256:{}", &digest[..12]);
        Ok(Calendar {
            years,
            sources,
            exceptions,
            version,
        })
    }
}

/// The days a count went through, by year.
struct Count {
    /// The last working day counted.
    last: Date,
    /// Years whose official schedule was used.
    known: BTreeSet<i32>,
    /// Years without one, counted with weekends as the only rest days.
    assumed: BTreeSet<i32>,
}

fn is_weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

pub use custody_format::deadline::{Deadline, ScheduleSource};

fn status(working: bool) -> &'static str {
    if working {
        "an adjusted working day"
    } else {
        "a rest day"
    }
}

/// `2027.json` → 2027; anything else → None (not a year file).
fn year_file_name(path: &Path) -> Option<i32> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".json")?;
    if stem.len() == 4 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok()
    } else {
        None
    }
}

/// Strict reading of one year file: a wrong schedule silently shifts
/// deadlines, so anything unexpected is an error. Returns date → working,
/// and the papers the file cites.
///
/// A year's paper may also fix days at the end of December of the year
/// before, when the New Year's Day block starts there (2023.json lists
/// 2022-12-31, 2019.json lists 2018-12-29..31); any other date outside the
/// year is refused.
fn parse_year_file(
    name_year: i32,
    bytes: &[u8],
) -> Result<(BTreeMap<Date, bool>, Vec<String>), String> {
    let file: YearFile =
        serde_json::from_slice(bytes).map_err(|e| format!("not a holiday-cn year file: {e}"))?;
    if file.year != name_year {
        return Err(format!(
            "file is named for {name_year} but holds year {}",
            file.year
        ));
    }
    if file.days.is_empty() {
        return Err(format!(
            "no days listed: the {name_year} schedule is not published yet"
        ));
    }
    if file.papers.is_empty() {
        return Err("no official paper cited".into());
    }
    // Papers are copied into every deadline that uses the year, and shown.
    if let Some(p) = file
        .papers
        .iter()
        .find(|p| p.trim().is_empty() || p.len() > MAX_PAPER_LEN || p.chars().any(char::is_control))
    {
        return Err(format!(
            "paper {p:?} is empty, longer than {MAX_PAPER_LEN} bytes or has control characters"
        ));
    }
    let mut days = BTreeMap::new();
    for day in &file.days {
        let date = Date::parse(&day.date, format_description!("[year]-[month]-[day]"))
            .ok()
            .filter(|d| d.to_string() == day.date)
            .ok_or_else(|| format!("date {:?} is not YYYY-MM-DD", day.date))?;
        let eve = date.year() == name_year - 1 && date.month() == Month::December;
        if date.year() != name_year && !eve {
            return Err(format!(
                "date {date} is neither in {name_year} nor in the December before"
            ));
        }
        if days.insert(date, !day.is_off_day).is_some() {
            return Err(format!("date {date} listed twice"));
        }
    }
    Ok((days, file.papers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime, offset};

    const BEIJING: UtcOffset = offset!(+8);

    fn cal() -> Calendar {
        Calendar::builtin()
    }

    fn unknown_year(e: CalendarError) -> i32 {
        match e {
            CalendarError::UnknownYear { year, .. } => year,
            other => panic!("expected UnknownYear, got {other:?}"),
        }
    }

    /// A small, valid year file for `with_dir` tests.
    fn year_json(year: i32, days: &[(&str, bool)]) -> String {
        let days: Vec<String> = days
            .iter()
            .map(|(d, off)| format!(r#"{{"name":"test","date":"{d}","isOffDay":{off}}}"#))
            .collect();
        format!(
            r#"{{"year":{year},"papers":["https://www.gov.cn/test"],"days":[{}]}}"#,
            days.join(",")
        )
    }

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn invalid(files: &[(&str, &str)]) -> String {
        let dir = dir_with(files);
        match Calendar::with_dir(dir.path()) {
            Err(CalendarError::Invalid { file, reason }) => format!("{file}: {reason}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn builtin_data_is_valid() {
        for &(year, text) in BUILTIN {
            let (days, _) = parse_year_file(year, text.as_bytes())
                .unwrap_or_else(|e| panic!("built-in {year}.json: {e}"));
            // Every year has Spring Festival and National Day: many weekday holidays.
            let weekday_off = days
                .iter()
                .filter(|&(d, &working)| {
                    !working && !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
                })
                .count();
            assert!(
                weekday_off >= 7,
                "{year}: only {weekday_off} weekday holidays"
            );
            assert!(days.values().any(|&w| w), "{year}: no adjusted working day");
            // The only date outside its file's year is New Year's Eve 2022.
            for d in days.keys().filter(|d| d.year() != year) {
                assert_eq!((year, *d), (2023, date!(2022 - 12 - 31)));
            }
        }
        let years: Vec<i32> = BUILTIN.iter().map(|&(y, _)| y).collect();
        assert_eq!(years, (2020..=2026).collect::<Vec<_>>());
        let c = cal();
        assert_eq!(c.years(), 2020..=2026);
        assert_eq!(c.exceptions.get(&date!(2022 - 12 - 31)), Some(&false));
        assert_eq!(c.exceptions.len(), 37 + 38 + 38 + 34 + 36 + 33 + 39);
    }

    #[test]
    fn builtin_is_not_missing_a_year_upstream_left_empty() {
        assert!(!BUILTIN.iter().any(|&(y, _)| y == 2027));
    }

    #[test]
    fn new_year_and_national_day_are_off_every_year() {
        let c = cal();
        for year in c.years() {
            for (m, d) in [(1, 1), (10, 1), (10, 2), (10, 3)] {
                let day =
                    Date::from_calendar_date(year, time::Month::try_from(m).unwrap(), d).unwrap();
                assert!(!c.is_working_day(day).unwrap(), "{day} should be off");
            }
        }
    }

    #[test]
    fn working_days() {
        let cases = [
            // 2026: New Year 1–3 Jan, Sunday 4 Jan worked.
            (date!(2026 - 01 - 01), false),
            (date!(2026 - 01 - 02), false), // Friday
            (date!(2026 - 01 - 04), true),  // Sunday, adjusted
            (date!(2026 - 01 - 05), true),
            // 2026 Spring Festival 15–23 Feb, Saturdays 14 and 28 Feb worked.
            (date!(2026 - 02 - 13), true),
            (date!(2026 - 02 - 14), true), // Saturday, adjusted
            (date!(2026 - 02 - 15), false),
            (date!(2026 - 02 - 16), false), // Monday
            (date!(2026 - 02 - 20), false), // Friday
            (date!(2026 - 02 - 23), false), // Monday
            (date!(2026 - 02 - 24), true),
            (date!(2026 - 02 - 28), true),  // Saturday, adjusted
            (date!(2026 - 03 - 01), false), // ordinary Sunday
            (date!(2026 - 05 - 09), true),  // Saturday, adjusted
            (date!(2026 - 06 - 19), false), // Dragon Boat, Friday
            (date!(2026 - 09 - 20), true),  // Sunday, adjusted
            (date!(2026 - 09 - 25), false), // Mid-Autumn, Friday
            (date!(2026 - 10 - 07), false), // Wednesday
            (date!(2026 - 10 - 08), true),  // Thursday after National Day
            (date!(2026 - 10 - 10), true),  // Saturday, adjusted
            (date!(2026 - 11 - 27), true),  // ordinary Friday
            (date!(2026 - 11 - 28), false), // ordinary Saturday
            (date!(2026 - 12 - 31), true),
            // 2025: National Day and Mid-Autumn 1–8 Oct; 28 Sep and 11 Oct worked.
            (date!(2025 - 09 - 28), true),
            (date!(2025 - 09 - 30), true),
            (date!(2025 - 10 - 01), false),
            (date!(2025 - 10 - 02), false),
            (date!(2025 - 10 - 03), false),
            (date!(2025 - 10 - 04), false),
            (date!(2025 - 10 - 05), false),
            (date!(2025 - 10 - 06), false),
            (date!(2025 - 10 - 07), false),
            (date!(2025 - 10 - 08), false),
            (date!(2025 - 10 - 09), true),
            (date!(2025 - 10 - 11), true), // Saturday, adjusted
            (date!(2025 - 10 - 12), false),
            (date!(2025 - 01 - 26), true),  // Sunday, adjusted
            (date!(2025 - 02 - 04), false), // Tuesday, Spring Festival
            // Earlier years.
            (date!(2024 - 02 - 18), true),  // Sunday, adjusted
            (date!(2024 - 10 - 07), false), // Monday
            (date!(2023 - 09 - 29), false), // Friday, Mid-Autumn
            (date!(2023 - 10 - 07), true),  // Saturday, adjusted
            (date!(2022 - 01 - 29), true),  // Saturday, adjusted
            (date!(2022 - 01 - 30), true),  // Sunday, adjusted
            (date!(2021 - 06 - 14), false), // Monday, Dragon Boat
            (date!(2020 - 01 - 19), true),  // Sunday, adjusted
            (date!(2020 - 01 - 31), false), // Friday, extended Spring Festival
            (date!(2020 - 02 - 03), true),  // Monday, listed as working
            (date!(2020 - 05 - 09), true),  // Saturday, adjusted
        ];
        let c = cal();
        for (day, want) in cases {
            assert_eq!(c.is_working_day(day).unwrap(), want, "{day}");
        }
    }

    #[test]
    fn unknown_years_are_refused() {
        let c = cal();
        for (day, year) in [
            (date!(2027 - 01 - 01), 2027),
            (date!(2027 - 06 - 15), 2027),
            (date!(2019 - 12 - 31), 2019),
            (date!(1999 - 01 - 04), 1999),
        ] {
            assert_eq!(unknown_year(c.is_working_day(day).unwrap_err()), year);
        }
    }

    #[test]
    fn adding_working_days() {
        let cases = [
            (date!(2026 - 11 - 27), 0, date!(2026 - 11 - 27)),
            (date!(2026 - 11 - 27), 1, date!(2026 - 11 - 30)),
            (date!(2026 - 11 - 27), 2, date!(2026 - 12 - 01)),
            (date!(2026 - 11 - 28), 2, date!(2026 - 12 - 01)), // from a Saturday
            // Eve of National Day 2025, and the holiday itself.
            (date!(2025 - 09 - 30), 1, date!(2025 - 10 - 09)),
            (date!(2025 - 09 - 30), 2, date!(2025 - 10 - 10)),
            (date!(2025 - 09 - 30), 3, date!(2025 - 10 - 11)), // adjusted Saturday
            (date!(2025 - 10 - 01), 2, date!(2025 - 10 - 10)),
            (date!(2025 - 10 - 08), 1, date!(2025 - 10 - 09)),
            // Spring Festival 2026: the adjusted Saturday counts.
            (date!(2026 - 02 - 13), 1, date!(2026 - 02 - 14)),
            (date!(2026 - 02 - 13), 2, date!(2026 - 02 - 24)),
            (date!(2026 - 02 - 14), 2, date!(2026 - 02 - 25)),
            // National Day 2026 (and the Mid-Autumn Friday before it).
            (date!(2026 - 09 - 24), 1, date!(2026 - 09 - 28)),
            (date!(2026 - 09 - 30), 2, date!(2026 - 10 - 09)),
            (date!(2026 - 10 - 09), 1, date!(2026 - 10 - 10)),
            // 2020's extended Spring Festival.
            (date!(2020 - 01 - 23), 1, date!(2020 - 02 - 03)),
            (date!(2020 - 01 - 23), 2, date!(2020 - 02 - 04)),
            // Across a year boundary, New Year's Day skipped.
            (date!(2023 - 12 - 29), 2, date!(2024 - 01 - 03)),
            (date!(2024 - 12 - 31), 1, date!(2025 - 01 - 02)),
            (date!(2025 - 12 - 31), 1, date!(2026 - 01 - 04)), // adjusted Sunday
            // The start day itself is not looked up.
            (date!(2019 - 12 - 31), 1, date!(2020 - 01 - 02)),
            (date!(2026 - 12 - 30), 1, date!(2026 - 12 - 31)),
        ];
        let c = cal();
        for (from, n, want) in cases {
            assert_eq!(c.add_working_days(from, n).unwrap(), want, "{from} + {n}");
        }
    }

    #[test]
    fn adding_working_days_past_known_years() {
        let c = cal();
        for (from, n, year) in [
            (date!(2026 - 12 - 30), 2, 2027),
            (date!(2026 - 12 - 31), 1, 2027),
            (date!(2025 - 06 - 01), 1000, 2027),
            (date!(2019 - 12 - 30), 1, 2019),
        ] {
            let e = c.add_working_days(from, n).unwrap_err();
            assert_eq!(unknown_year(e), year, "{from} + {n}");
        }
    }

    #[test]
    fn deadlines() {
        let cases = [
            // Friday → end of Tuesday.
            (
                datetime!(2026-11-27 15:00 +8),
                BEIJING,
                2,
                "2026-12-02T00:00:00+08:00",
            ),
            (
                datetime!(2026-11-27 23:59:59.999 +8),
                BEIJING,
                2,
                "2026-12-02T00:00:00+08:00",
            ),
            (
                datetime!(2026-11-27 15:00 +8),
                BEIJING,
                0,
                "2026-11-28T00:00:00+08:00",
            ),
            (
                datetime!(2026-11-27 15:00 +8),
                BEIJING,
                1,
                "2026-12-01T00:00:00+08:00",
            ),
            // Ended on the eve of a holiday block: the block is skipped.
            (
                datetime!(2026-09-30 22:00 +8),
                BEIJING,
                2,
                "2026-10-10T00:00:00+08:00",
            ),
            (
                datetime!(2025-09-30 18:00 +8),
                BEIJING,
                2,
                "2025-10-11T00:00:00+08:00",
            ),
            // Ended on a holiday.
            (
                datetime!(2025-10-03 10:00 +8),
                BEIJING,
                2,
                "2025-10-11T00:00:00+08:00",
            ),
            (
                datetime!(2026-02-17 10:00 +8),
                BEIJING,
                2,
                "2026-02-26T00:00:00+08:00",
            ),
            // Ended on an adjusted working Saturday.
            (
                datetime!(2026-02-14 09:00 +8),
                BEIJING,
                2,
                "2026-02-26T00:00:00+08:00",
            ),
            // 16:30 UTC Thursday is 00:30 Friday in Beijing: the offset decides the day.
            (
                datetime!(2026-11-26 16:30 UTC),
                BEIJING,
                2,
                "2026-12-02T00:00:00+08:00",
            ),
            (
                datetime!(2026-11-26 16:30 UTC),
                UtcOffset::UTC,
                2,
                "2026-12-01T00:00:00Z",
            ),
            (
                datetime!(2026-11-26 15:59:59 UTC),
                BEIJING,
                2,
                "2026-12-01T00:00:00+08:00",
            ),
            (
                datetime!(2026-02-13 17:00 UTC),
                BEIJING,
                2,
                "2026-02-26T00:00:00+08:00",
            ),
            (
                datetime!(2026-02-13 17:00 UTC),
                UtcOffset::UTC,
                2,
                "2026-02-25T00:00:00Z",
            ),
            // The recording's own offset does not matter, only the instant.
            (
                datetime!(2026-11-26 12:00 -5),
                BEIJING,
                2,
                "2026-12-02T00:00:00+08:00",
            ),
            // Across the year end.
            (
                datetime!(2025-12-31 09:00 +8),
                BEIJING,
                2,
                "2026-01-06T00:00:00+08:00",
            ),
        ];
        let c = cal();
        for (ended, offset, n, want) in cases {
            let d = c.deadline(ended, offset, n).unwrap();
            assert_eq!(d.due, want, "{ended} at {offset}, {n} days");
            assert_eq!(d.working_days, n);
            assert_eq!(d.calendar, c.version());
        }
    }

    #[test]
    fn deadlines_needing_unknown_years() {
        let c = cal();
        for (ended, n) in [
            (datetime!(2026-12-30 10:00 +8), 2),
            (datetime!(2026-12-31 10:00 +8), 1),
            // 20:00 UTC on 31 Dec is already 2027 in Beijing.
            (datetime!(2026-12-31 20:00 UTC), 1),
        ] {
            let e = c.deadline(ended, BEIJING, n).unwrap_err();
            assert_eq!(unknown_year(e), 2027, "{ended} + {n}");
        }
        // The same instant in UTC is still 2026 and has a known successor day.
        assert!(
            c.deadline(datetime!(2026-12-30 20:00 UTC), UtcOffset::UTC, 1)
                .is_ok()
        );
    }

    #[test]
    fn unknown_year_message_names_calendar() {
        let c = cal();
        let e = c
            .deadline(datetime!(2026-12-31 10:00 +8), BEIJING, 2)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "no official holiday schedule for 2027 in calendar {}: refusing to guess",
                c.version()
            )
        );
    }

    #[test]
    fn offset_with_seconds_is_refused() {
        let odd = UtcOffset::from_hms(8, 5, 43).unwrap();
        assert!(matches!(
            cal().deadline(datetime!(2026-11-27 15:00 +8), odd, 2),
            Err(CalendarError::Offset(_))
        ));
    }

    #[test]
    fn met_by() {
        let d = cal()
            .deadline(datetime!(2026-11-27 15:00 +8), BEIJING, 2)
            .unwrap();
        let cases = [
            (datetime!(2026-11-27 15:05 +8), true),
            (datetime!(2026-12-01 23:59:59.999 +8), true),
            (datetime!(2026-12-01 15:59:59 UTC), true),
            (datetime!(2026-12-02 00:00 +8), false),
            (datetime!(2026-12-01 16:00 UTC), false),
            (datetime!(2026-12-03 09:00 +8), false),
        ];
        for (stored, want) in cases {
            assert_eq!(d.met_by(stored), want, "{stored}");
        }
        let damaged = Deadline {
            due: "end of Tuesday".into(),
            ..d
        };
        assert!(!damaged.met_by(datetime!(2026-11-27 15:05 +8)));
    }

    #[test]
    fn deadline_round_trips_through_json() {
        let d = cal()
            .deadline(datetime!(2026-11-27 15:00 +8), BEIJING, 2)
            .unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert!(
            json.contains(r#""due":"2026-12-02T00:00:00+08:00""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Deadline>(&json).unwrap(), d);
    }

    #[test]
    fn version_is_stable_and_derived_from_the_data() {
        let c = cal();
        assert_eq!(c.version(), Calendar::builtin().version());
        assert!(c.version().starts_with("cn-holiday 2020-2026 sha256:"));
        let mut hash = Sha256::new();
        for &(_, text) in BUILTIN {
            hash.update(text.as_bytes());
        }
        let full = hex::encode(hash.finalize());
        assert_eq!(
            c.version(),
            format!("cn-holiday 2020-2026 sha256:{}", &full[..12])
        );
        // Pinned: changing the data must be a deliberate, visible change.
        assert_eq!(c.version(), "cn-holiday 2020-2026 sha256:6433220bcc03");
    }

    #[test]
    fn empty_dir_is_the_builtin_calendar() {
        let dir = dir_with(&[("SOURCE.md", "notes"), ("schema.json", "{}")]);
        let c = Calendar::with_dir(dir.path()).unwrap();
        assert_eq!(c.version(), cal().version());
        assert_eq!(c.years(), 2020..=2026);
    }

    #[test]
    fn dir_adds_a_published_year() {
        let y2027 = year_json(
            2027,
            &[
                ("2027-01-01", true),
                ("2027-01-04", true),
                ("2027-01-09", false),
            ],
        );
        let dir = dir_with(&[("2027.json", &y2027)]);
        let c = Calendar::with_dir(dir.path()).unwrap();
        assert_eq!(c.years(), 2020..=2027);
        assert!(c.version().starts_with("cn-holiday 2020-2027 sha256:"));
        assert_ne!(c.version(), cal().version());
        for (day, want) in [
            (date!(2027 - 01 - 01), false),
            (date!(2027 - 01 - 04), false),
            (date!(2027 - 01 - 05), true),
            (date!(2027 - 01 - 09), true),
            (date!(2027 - 01 - 10), false),
        ] {
            assert_eq!(c.is_working_day(day).unwrap(), want, "{day}");
        }
        let d = c
            .deadline(datetime!(2026-12-30 10:00 +8), BEIJING, 2)
            .unwrap();
        assert_eq!(d.due, "2027-01-06T00:00:00+08:00");
        assert_eq!(d.calendar, c.version());
        assert_eq!(
            unknown_year(c.is_working_day(date!(2028 - 01 - 03)).unwrap_err()),
            2028
        );
    }

    #[test]
    fn dir_overrides_a_builtin_year() {
        // Pretend 14 Feb 2026 had been a rest day after all.
        let y2026 = year_json(2026, &[("2026-02-14", true)]);
        let dir = dir_with(&[("2026.json", &y2026)]);
        let c = Calendar::with_dir(dir.path()).unwrap();
        assert_eq!(c.years(), 2020..=2026);
        assert_ne!(c.version(), cal().version());
        assert!(!c.is_working_day(date!(2026 - 02 - 14)).unwrap());
        // The override replaces the whole year: 16 Feb is an ordinary Monday now.
        assert!(c.is_working_day(date!(2026 - 02 - 16)).unwrap());
        assert!(!c.is_working_day(date!(2025 - 10 - 01)).unwrap());
    }

    #[test]
    fn dir_extends_backwards() {
        let y2019 = year_json(2019, &[("2019-10-01", true)]);
        let dir = dir_with(&[("2019.json", &y2019)]);
        let c = Calendar::with_dir(dir.path()).unwrap();
        assert_eq!(c.years(), 2019..=2026);
        assert!(c.version().starts_with("cn-holiday 2019-2026 sha256:"));
    }

    #[test]
    fn invalid_dirs() {
        let y2028 = year_json(2028, &[("2028-01-01", true)]);
        let y2018 = year_json(2018, &[("2018-01-01", true)]);
        let year_2028_in_2027 = year_json(2028, &[("2028-01-03", true)]);
        let wrong_year_date = year_json(2027, &[("2026-11-30", true)]);
        let next_year_date = year_json(2027, &[("2028-01-01", true)]);
        let duplicate = year_json(2027, &[("2027-01-01", true), ("2027-01-01", false)]);
        let bad_date = year_json(2027, &[("2027-1-1", true)]);
        let no_such_day = year_json(2027, &[("2027-02-30", true)]);
        let upstream_placeholder = r#"{"year":2027,"papers":[],"days":[]}"#;
        let no_papers = r#"{"year":2027,"papers":[],"days":[{"name":"x","date":"2027-01-01","isOffDay":true}]}"#;
        let extra_field = r#"{"year":2027,"papers":["p"],"days":[],"note":"x"}"#;
        let cases: [(&str, &str, &str); 12] = [
            ("2028.json", &y2028, "contiguous"),
            ("2018.json", &y2018, "contiguous"),
            ("2027.json", &year_2028_in_2027, "holds year 2028"),
            (
                "2027.json",
                &wrong_year_date,
                "neither in 2027 nor in the December before",
            ),
            ("2027.json", &next_year_date, "neither in 2027"),
            ("2027.json", &duplicate, "listed twice"),
            ("2027.json", &bad_date, "not YYYY-MM-DD"),
            ("2027.json", &no_such_day, "not YYYY-MM-DD"),
            ("2027.json", upstream_placeholder, "not published"),
            ("2027.json", no_papers, "no official paper"),
            ("2027.json", extra_field, "unknown field `note`"),
            ("2027.json", "{", "not a holiday-cn year file"),
        ];
        for (name, text, want) in cases {
            let msg = invalid(&[(name, text)]);
            assert!(msg.contains(want), "{name}: {msg:?} lacks {want:?}");
            assert!(msg.contains(name), "{msg:?} lacks the file name");
        }
    }

    #[test]
    fn papers_must_agree_on_a_shared_december_day() {
        let y2026 = year_json(2026, &[("2026-02-16", true), ("2026-12-31", false)]);
        let y2027 = year_json(2027, &[("2027-01-01", true), ("2026-12-31", true)]);
        let msg = invalid(&[("2026.json", &y2026), ("2027.json", &y2027)]);
        assert!(
            msg.contains("2026-12-31 is a rest day here but an adjusted working day in"),
            "{msg}"
        );
        // Agreeing papers are fine.
        let y2026 = year_json(2026, &[("2026-12-31", true)]);
        let dir = dir_with(&[("2026.json", &y2026), ("2027.json", &y2027)]);
        let c = Calendar::with_dir(dir.path()).unwrap();
        assert!(!c.is_working_day(date!(2026 - 12 - 31)).unwrap());
    }

    #[test]
    fn next_years_paper_can_fix_december_days() {
        // As 2019.json does for 2018-12-29..31: a New Year block starting on 31 Dec.
        let y2027 = year_json(
            2027,
            &[
                ("2026-12-31", true),
                ("2027-01-01", true),
                ("2027-01-02", true),
                ("2027-01-03", true),
                ("2027-01-09", false),
            ],
        );
        let dir = dir_with(&[("2027.json", &y2027)]);
        let c = Calendar::with_dir(dir.path()).unwrap();
        assert!(cal().is_working_day(date!(2026 - 12 - 31)).unwrap());
        assert!(!c.is_working_day(date!(2026 - 12 - 31)).unwrap());
        assert_eq!(
            c.add_working_days(date!(2026 - 12 - 30), 1).unwrap(),
            date!(2027 - 01 - 04)
        );
        // A December day of a year not loaded stays unknown.
        let y2019 = year_json(2019, &[("2018-12-31", true), ("2019-01-01", true)]);
        let dir = dir_with(&[("2019.json", &y2019)]);
        let c = Calendar::with_dir(dir.path()).unwrap();
        assert_eq!(
            unknown_year(c.is_working_day(date!(2018 - 12 - 31)).unwrap_err()),
            2018
        );
    }

    #[test]
    fn missing_dir_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = Calendar::with_dir(&dir.path().join("absent")).unwrap_err();
        assert!(matches!(e, CalendarError::Io { .. }), "{e:?}");
    }

    #[test]
    fn year_file_names() {
        for (name, want) in [
            ("2027.json", Some(2027)),
            ("/etc/cal/2019.json", Some(2019)),
            ("schema.json", None),
            ("2027.ics", None),
            ("2027.json.bak", None),
            ("27.json", None),
            ("+202.json", None),
        ] {
            assert_eq!(year_file_name(Path::new(name)), want, "{name}");
        }
    }

    #[test]
    fn provisional_deadlines_count_weekends_of_missing_years() {
        let c = cal();
        // Wednesday 30 December 2026: Thursday 31 (2026's schedule) and
        // Friday 1 January 2027 (no schedule: a weekday, so working).
        let d = c
            .provisional_deadline(datetime!(2026-12-30 10:00 +8), BEIJING, 2)
            .unwrap();
        assert_eq!(d.due, "2027-01-02T00:00:00+08:00");
        assert_eq!(d.provisional_years, [2027]);
        assert_eq!(d.calendar, c.version());
        let years: Vec<i32> = d.sources.iter().map(|s| s.year).collect();
        assert_eq!(years, [2026]);
        let src = &d.sources[0];
        assert_eq!(src.file, "built-in cn/2026.json");
        assert_eq!(
            src.sha256,
            hex::encode(Sha256::digest(include_bytes!("calendar/cn/2026.json")))
        );
        assert!(src.papers[0].starts_with("http"), "{src:?}");
        // The strict count still refuses.
        assert_eq!(
            unknown_year(
                c.deadline(datetime!(2026-12-30 10:00 +8), BEIJING, 2)
                    .unwrap_err()
            ),
            2027
        );
        // Friday 31 December 2027 is past the calendar: Monday and Tuesday
        // 3 and 4 January 2028, both years provisional.
        let d = c
            .provisional_deadline(datetime!(2027-12-31 10:00 +8), BEIJING, 2)
            .unwrap();
        assert_eq!(d.due, "2028-01-05T00:00:00+08:00");
        assert_eq!(d.provisional_years, [2028]);
        assert!(d.sources.is_empty());
        // Within the calendar nothing is provisional, and it equals the
        // strict count.
        let strict = c
            .deadline(datetime!(2026-09-30 22:00 +8), BEIJING, 2)
            .unwrap();
        let prov = c
            .provisional_deadline(datetime!(2026-09-30 22:00 +8), BEIJING, 2)
            .unwrap();
        assert_eq!(strict, prov);
        assert!(prov.provisional_years.is_empty());
        // The end of time is still an error.
        assert!(
            c.provisional_deadline(datetime!(9999-12-31 10:00 +8), BEIJING, 2)
                .is_err()
        );
    }

    #[test]
    fn a_schedule_added_later_is_named_in_the_deadline() {
        // A test fixture, not the real 2027 schedule (unknown when written):
        // New Year's Day on Friday 1 January, and Saturday 9 January an
        // adjusted working day.
        let y2027 = year_json(2027, &[("2027-01-01", true), ("2027-01-09", false)]);
        let dir = dir_with(&[("2027.json", &y2027)]);
        let c = Calendar::with_dir(dir.path()).unwrap();
        let d = c
            .provisional_deadline(datetime!(2026-12-30 10:00 +8), BEIJING, 2)
            .unwrap();
        assert_eq!(d.due, "2027-01-05T00:00:00+08:00");
        assert!(d.provisional_years.is_empty());
        let years: Vec<i32> = d.sources.iter().map(|s| s.year).collect();
        assert_eq!(years, [2026, 2027]);
        let added = &d.sources[1];
        assert_eq!(
            added.file,
            dir.path().join("2027.json").display().to_string()
        );
        assert_eq!(added.sha256, hex::encode(Sha256::digest(y2027.as_bytes())));
        assert_eq!(added.papers, ["https://www.gov.cn/test"]);
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["sources"][1]["year"], 2027, "{json}");
        assert!(json.get("provisional_years").is_none(), "{json}");
    }

    #[test]
    fn papers_and_sizes_are_checked() {
        let bad_paper = r#"{"year":2027,"papers":["https://x\u001b[2J"],"days":[{"name":"x","date":"2027-01-01","isOffDay":true}]}"#;
        let blank_paper = r#"{"year":2027,"papers":[" "],"days":[{"name":"x","date":"2027-01-01","isOffDay":true}]}"#;
        for text in [bad_paper, blank_paper] {
            let msg = invalid(&[("2027.json", text)]);
            assert!(msg.contains("paper"), "{msg}");
        }
        let huge = format!(
            "{{\"year\":2027,\"papers\":[\"p\"],\"days\":[],\"x\":\"{}\"}}",
            "a".repeat(1 << 20)
        );
        let msg = invalid(&[("2027.json", &huge)]);
        assert!(msg.contains("larger than 1048576 bytes"), "{msg}");
    }
}
