//! `GET /api/v1/projects/{id}/trends`: the project's runs over time, per
//! hour or day and task — how many, their success rate, duration and
//! queue wait (p50, p95), its findings by severity, new and fixed — for
//! the project page's plots. Read from the worktree's state database,
//! read only, beside its daemon (or without it); the query is the
//! store's (`store/trends.rs`).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiError, blocking};
use super::projects::known;
use crate::clock::Millis;
use crate::store::{Store, TrendQuery, Trends};

const HOUR: Millis = 3_600_000;
const DAY: Millis = 24 * HOUR;
/// How far back a window may reach.
const MAX_DAYS: u32 = 365;
/// Windows up to this long are bucketed by the hour unless asked.
const HOURLY_UP_TO_DAYS: u32 = 2;

pub fn routes() -> Router {
    Router::new().route("/api/v1/projects/{id}/trends", get(trends))
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Bucket {
    Hour,
    Day,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendsQuery {
    task: Option<String>,
    /// The window: this many days back from now (14).
    days: Option<u32>,
    /// `hour` or `day` (by default, hours for up to 2 days).
    bucket: Option<Bucket>,
    /// Buckets start at midnight here: minutes east of UTC (0).
    utc_offset_min: Option<i32>,
}

/// The store's query for `q` at `now`: the window starts at the start
/// of its first bucket.
fn window(q: &TrendsQuery, now: Millis) -> Result<TrendQuery<'_>, ApiError> {
    let days = q.days.unwrap_or(14);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ApiError::bad_request(format!(
            "days: from 1 to {MAX_DAYS}, not {days}"
        )));
    }
    let offset_min = q.utc_offset_min.unwrap_or(0);
    if offset_min.abs() > 18 * 60 {
        return Err(ApiError::bad_request(format!(
            "utc_offset_min: from -1080 to 1080, not {offset_min}"
        )));
    }
    let bucket = q.bucket.unwrap_or(if days <= HOURLY_UP_TO_DAYS {
        Bucket::Hour
    } else {
        Bucket::Day
    });
    let bucket_ms = match bucket {
        Bucket::Hour => HOUR,
        Bucket::Day => DAY,
    };
    let offset_ms = Millis::from(offset_min) * 60_000;
    let back = now - Millis::from(days) * DAY;
    Ok(TrendQuery {
        task: q.task.as_deref(),
        from_ms: (back + offset_ms).div_euclid(bucket_ms) * bucket_ms - offset_ms,
        to_ms: now + 1,
        bucket_ms,
        offset_ms,
    })
}

async fn trends(
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<TrendsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let Query(q) = q.map_err(|r| ApiError::bad_request(r.body_text()))?;
    // Bad input is named (400) before an unknown project (404).
    window(&q, 0)?;
    let root = known(&id)?.root;
    let trends = blocking(move || {
        let w = window(&q, crate::clock::now_ms())?;
        let db = root.join(".bgtask").join(crate::store::FILE);
        if !db.exists() {
            return Ok(Trends {
                from_ms: w.from_ms,
                to_ms: w.to_ms,
                bucket_ms: w.bucket_ms,
                tasks: Vec::new(),
                total: Vec::new(),
            });
        }
        Store::open_read_only(&db)
            .and_then(|store| store.trends(&w))
            .map_err(|e| ApiError::internal(format!("{:#}", anyhow::Error::new(e))))
    })
    .await?;
    Ok(Json(
        serde_json::to_value(trends).map_err(ApiError::internal)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(days: Option<u32>, bucket: Option<Bucket>, offset: Option<i32>) -> TrendsQuery {
        TrendsQuery {
            task: None,
            days,
            bucket,
            utc_offset_min: offset,
        }
    }

    /// The window's (from, to, bucket) for these parameters at `now`.
    fn span(q: &TrendsQuery, now: Millis) -> Result<(Millis, Millis, Millis), ApiError> {
        window(q, now).map(|w| (w.from_ms, w.to_ms, w.bucket_ms))
    }

    #[test]
    fn windows_start_on_a_bucket_and_stay_bounded() {
        let now = 100 * DAY + 5 * HOUR + 7;
        let w = span(&query(None, None, None), now).unwrap();
        assert_eq!(w, (86 * DAY, now + 1, DAY));
        let w = span(&query(Some(1), None, Some(120)), now).unwrap();
        assert_eq!(w, (99 * DAY + 5 * HOUR, now + 1, HOUR));
        let w = span(&query(Some(30), Some(Bucket::Day), Some(120)), now).unwrap();
        assert_eq!(w.0, 70 * DAY - 2 * HOUR, "local midnight");
        for (days, offset, field) in [
            (Some(0), None, "days"),
            (Some(366), None, "days"),
            (None, Some(2000), "utc_offset_min"),
        ] {
            let Err(e) = span(&query(days, None, offset), now) else {
                panic!("{days:?} {offset:?}")
            };
            assert!(e.message.starts_with(field), "{}", e.message);
        }
    }
}
