//! The `catalog` table: one row per stored recording, the whole
//! [`Entry`] in `entry` and the searched fields beside it.

use custody_format::catalog::{Entry, Filter};
use tokio_postgres::types::{Json, ToSql};

use crate::{Db, DbError};

const UPSERT: &str = "INSERT INTO catalog
    (manifest_key, recorder, recording_id, officer, unit, category, case_id, occasion,
     sort_at, deadline_status, entry)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    ON CONFLICT (manifest_key) DO UPDATE SET
     recorder = EXCLUDED.recorder, recording_id = EXCLUDED.recording_id,
     officer = EXCLUDED.officer, unit = EXCLUDED.unit, category = EXCLUDED.category,
     case_id = EXCLUDED.case_id, occasion = EXCLUDED.occasion, sort_at = EXCLUDED.sort_at,
     deadline_status = EXCLUDED.deadline_status, entry = EXCLUDED.entry";

async fn upsert(c: &impl deadpool_postgres::GenericClient, e: &Entry) -> Result<(), DbError> {
    c.execute(
        UPSERT,
        &[
            &e.manifest_key,
            &e.recorder,
            &e.recording_id,
            &e.officer,
            &e.unit,
            &e.category,
            &e.case_id,
            &e.occasion,
            &e.sort_time(),
            &e.deadline_status,
            &Json(e),
        ],
    )
    .await?;
    Ok(())
}

fn entries(rows: Vec<tokio_postgres::Row>) -> Result<Vec<Entry>, DbError> {
    rows.iter()
        .map(|r| Ok(r.try_get::<_, Json<Entry>>(0)?.0))
        .collect()
}

impl Db {
    /// Writes the line of one recording (a new one, or its new state).
    pub async fn catalog_put(&self, e: &Entry) -> Result<(), DbError> {
        upsert(&self.client().await?, e).await
    }

    /// Removes the line of a deleted recording.
    pub async fn catalog_remove(&self, manifest_key: &str) -> Result<(), DbError> {
        self.client()
            .await?
            .execute(
                "DELETE FROM catalog WHERE manifest_key = $1",
                &[&manifest_key],
            )
            .await?;
        Ok(())
    }

    /// Replaces the whole catalog with `all`, in one transaction: readers
    /// see the old catalog or the new one.
    pub async fn catalog_replace(&self, all: &[Entry]) -> Result<(), DbError> {
        let mut c = self.client().await?;
        let t = c.transaction().await?;
        t.execute("DELETE FROM catalog", &[]).await?;
        for e in all {
            upsert(&t, e).await?;
        }
        t.commit().await?;
        Ok(())
    }

    /// Lines matching `f`, newest first (as `Filter::matches` and the
    /// storage catalog's search order them).
    pub async fn catalog_search(&self, f: &Filter) -> Result<Vec<Entry>, DbError> {
        let (sql, params) = search_query(f);
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
        entries(self.client().await?.query(&sql, &refs).await?)
    }

    /// Every line whose deadline has `status` (`provisional`, …).
    pub async fn catalog_with_deadline_status(&self, status: &str) -> Result<Vec<Entry>, DbError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT entry FROM catalog WHERE deadline_status = $1 ORDER BY manifest_key",
                &[&status],
            )
            .await?;
        entries(rows)
    }
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

/// The query for `f`: one equality per field given (an empty value is no
/// filter, as in `Filter::matches`), bounds on the sort time (a line
/// without one is left out when a bound is given, as there), its values
/// as parameters — never in the text.
fn search_query(f: &Filter) -> (String, Params) {
    let given = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    let mut params: Params = Vec::new();
    let mut clauses: Vec<String> = Vec::new();
    for (column, v) in [
        ("officer", &f.officer),
        ("recorder", &f.device),
        ("case_id", &f.case),
        ("category", &f.category),
        ("occasion", &f.occasion),
        ("unit", &f.unit),
    ] {
        if let Some(v) = given(v) {
            params.push(Box::new(v));
            clauses.push(format!("{column} = ${}", params.len()));
        }
    }
    for (op, v) in [(">=", &f.from), ("<=", &f.to)] {
        if let Some(t) = given(v).and_then(|v| custody_format::time_fmt::parse(&v)) {
            params.push(Box::new(t));
            clauses.push(format!("sort_at {op} ${}", params.len()));
        }
    }
    let mut sql = "SELECT entry FROM catalog".to_string();
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    sql.push_str(" ORDER BY sort_at DESC NULLS LAST, manifest_key");
    (sql, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_queries_table() {
        let f = |s: &str| -> Filter { serde_json::from_str(s).unwrap() };
        let order = " ORDER BY sort_at DESC NULLS LAST, manifest_key";
        let table = [
            ("{}", "SELECT entry FROM catalog".to_string(), 0),
            (
                r#"{"officer":""}"#,
                "SELECT entry FROM catalog".to_string(),
                0,
            ),
            (
                r#"{"officer":"o-1","case":"C-1"}"#,
                "SELECT entry FROM catalog WHERE officer = $1 AND case_id = $2".to_string(),
                2,
            ),
            (
                r#"{"device":"bwc-1","from":"2026-11-30T00:00:00Z","to":"not a time"}"#,
                "SELECT entry FROM catalog WHERE recorder = $1 AND sort_at >= $2".to_string(),
                2,
            ),
            (
                r#"{"unit":"u'; DROP TABLE catalog; --"}"#,
                "SELECT entry FROM catalog WHERE unit = $1".to_string(),
                1,
            ),
        ];
        for (q, want, n) in table {
            let (sql, params) = search_query(&f(q));
            assert_eq!(sql, format!("{want}{order}"), "{q}");
            assert_eq!(params.len(), n, "{q}");
        }
    }
}
