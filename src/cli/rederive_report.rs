//! Printing `custody verify --rederive` results.

use custody::rederive::{Outcome, Rederivation};

fn short(sha: Option<&str>) -> &str {
    sha.map(|s| &s[..s.len().min(16)]).unwrap_or("-")
}

pub fn print(r: &Rederivation) {
    let verdict = match r.outcome {
        Outcome::Match => "REDERIVED OK",
        Outcome::Mismatch => "REDERIVED MISMATCH",
        Outcome::NothingDerived => "REDERIVE: nothing derived",
        Outcome::NotRederivable => "REDERIVE: not re-derivable",
    };
    let matching = r.objects.iter().filter(|o| o.matches()).count();
    match r.outcome {
        Outcome::Match | Outcome::Mismatch => println!(
            "{verdict} {}: {matching} of {} derived objects made again byte for byte",
            r.manifest_key,
            r.objects.len()
        ),
        _ => println!(
            "{verdict} {}: {}",
            r.manifest_key,
            r.reason.as_deref().unwrap_or("")
        ),
    }
    for o in &r.objects {
        let what = match (&o.key, o.matches()) {
            (Some(k), true) => format!("match    object {} {k}", o.index.unwrap_or_default()),
            (Some(k), false) => format!("MISMATCH object {} {k}", o.index.unwrap_or_default()),
            (None, _) => "MISMATCH (made again but not stored)".to_string(),
        };
        println!(
            "  {what}: stored {} re-derived {}",
            short(o.stored_sha256.as_deref()),
            short(o.rederived_sha256.as_deref())
        );
    }
    for n in &r.notes {
        println!("  note: {n}");
    }
}
