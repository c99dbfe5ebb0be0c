//! Metrics: PutMetricData, GetMetricStatistics, GetMetricData, ListMetrics.

use std::collections::BTreeMap;

use berth_metrics::{Datum, MetricId, STATISTICS, Stats};
use serde_json::{Value, json};

use super::expressions::{Series, evaluate};
use super::{combination, dimensions, invalid};
use crate::ecs::{Ctx, Obj, text};
use crate::error::{ApiError, ApiResult};

const HOUR_MS: i64 = 3_600_000;

fn now_ms(ctx: &Ctx<'_>) -> i64 {
    (ctx.timestamp() * 1000.0).round() as i64
}

/// A timestamp member (seconds, as the protocols read them) in milliseconds.
fn millis(input: &Obj, key: &str) -> Option<i64> {
    input.get(key).and_then(Value::as_f64).map(|s| (s * 1000.0).round() as i64)
}

fn number(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// The datapoints one `MetricDatum` stands for.
fn datum(namespace: &str, d: &Value, now: i64) -> ApiResult<Vec<Datum>> {
    let name = d.get("MetricName").and_then(Value::as_str).unwrap_or_default();
    let dims = dimensions(d.as_object().expect("a structure"), "Dimensions");
    if dims.len() > 30 {
        return Err(invalid("A metric can have at most 30 dimensions."));
    }
    let timestamp = d.get("Timestamp").and_then(Value::as_f64).map_or(now, |s| (s * 1000.0).round() as i64);
    if timestamp < now - 14 * 24 * HOUR_MS || timestamp > now + 2 * HOUR_MS {
        return Err(invalid(format!(
            "The parameter MetricData.member.Timestamp must specify a time no more than two weeks in the past and two hours in the future ({name})."
        )));
    }
    if let Some(r) = d.get("StorageResolution").and_then(Value::as_i64)
        && r != 1
        && r != 60
    {
        return Err(invalid(format!("StorageResolution is 1 or 60, not {r}.")));
    }
    let unit = d.get("Unit").and_then(Value::as_str).map(str::to_string);
    let metric = MetricId::new(namespace, name, dims);
    let one = |stats| Datum { metric: metric.clone(), timestamp, stats, unit: unit.clone() };
    let value = number(d, "Value");
    let set = d.get("StatisticValues");
    let values = d.get("Values").and_then(Value::as_array);
    match (value, set, values) {
        (Some(v), None, None) => Ok(vec![one(Stats::value(v))]),
        (None, Some(s), None) => {
            let (count, sum, min, max) =
                (number(s, "SampleCount"), number(s, "Sum"), number(s, "Minimum"), number(s, "Maximum"));
            let (Some(count), Some(sum), Some(min), Some(max)) = (count, sum, min, max) else {
                return Err(invalid("StatisticValues needs SampleCount, Sum, Minimum and Maximum."));
            };
            if count <= 0.0 || min > max {
                return Err(invalid("StatisticValues must have a positive SampleCount and Minimum <= Maximum."));
            }
            Ok(vec![one(Stats { count, sum, min, max })])
        }
        (None, None, Some(values)) => {
            let counts = d.get("Counts").and_then(Value::as_array);
            if counts.is_some_and(|c| c.len() != values.len()) {
                return Err(combination("Values and Counts must have the same number of items."));
            }
            Ok(values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let v = v.as_f64().unwrap_or_default();
                    let n = counts.and_then(|c| c[i].as_f64()).unwrap_or(1.0);
                    one(Stats { count: n, sum: v * n, min: v, max: v })
                })
                .collect())
        }
        (None, None, None) => {
            Err(combination(format!("The metric {name} needs one of Value, StatisticValues or Values.")))
        }
        _ => Err(combination(
            "The parameters MetricData.member.Value, StatisticValues and Values are mutually exclusive.",
        )),
    }
}

pub fn put(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let namespace = text(&input, "Namespace").unwrap_or_default();
    if namespace.starts_with("AWS/") {
        return Err(invalid(format!(
            "The value {namespace} for parameter Namespace is invalid: AWS/ namespaces are reserved."
        )));
    }
    if input.get("EntityMetricData").and_then(Value::as_array).is_some_and(|e| !e.is_empty()) {
        return Err(invalid("Berth does not associate metrics with entities: EntityMetricData cannot be given."));
    }
    let data = input.get("MetricData").and_then(Value::as_array).cloned().unwrap_or_default();
    if data.is_empty() {
        return Err(ApiError::new(400, "MissingParameter", "The parameter MetricData is required."));
    }
    if data.len() > 1000 {
        return Err(invalid("PutMetricData takes at most 1000 MetricData items."));
    }
    let now = now_ms(ctx);
    let mut points = Vec::new();
    for d in &data {
        points.extend(datum(namespace, d, now)?);
    }
    ctx.app.metrics.put(&points)?;
    Ok(json!({}))
}

fn check_period(period: i64, start: i64, end: i64, limit: i64) -> ApiResult<()> {
    if period <= 0 || (period >= 60 && period % 60 != 0) || (period < 60 && ![1, 5, 10, 30].contains(&period)) {
        return Err(invalid(format!("The parameter Period must be 1, 5, 10, 30 or a multiple of 60, not {period}.")));
    }
    if end <= start {
        return Err(invalid("The parameter StartTime must be less than the parameter EndTime."));
    }
    let points = (end - start) / 1000 / period;
    if points > limit {
        return Err(combination(format!(
            "You have requested up to {points} datapoints, which exceeds the limit of {limit}. You may reduce the datapoints requested by increasing Period, or decreasing the time range."
        )));
    }
    Ok(())
}

pub fn statistics(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let wanted = crate::ecs::strings(&input, "Statistics");
    if input.get("ExtendedStatistics").and_then(Value::as_array).is_some_and(|e| !e.is_empty()) {
        return Err(invalid(
            "Berth does not keep percentiles: ExtendedStatistics cannot be asked for; use Statistics.",
        ));
    }
    if wanted.is_empty() {
        return Err(combination("Must specify either Statistics or ExtendedStatistics, but not both."));
    }
    let (start, end) = (millis(&input, "StartTime").unwrap_or_default(), millis(&input, "EndTime").unwrap_or_default());
    let period = input.get("Period").and_then(Value::as_i64).unwrap_or_default();
    check_period(period, start, end, 1440)?;
    let name = text(&input, "MetricName").unwrap_or_default();
    let metric = MetricId::new(text(&input, "Namespace").unwrap_or_default(), name, dimensions(&input, "Dimensions"));
    let unit = text(&input, "Unit");
    let datapoints: Vec<Value> = ctx
        .app
        .metrics
        .statistics(&metric, start, end, period, unit)
        .into_iter()
        .map(|(at, stats, u)| {
            let mut p = json!({"Timestamp": at as f64 / 1000.0, "Unit": u.unwrap_or_else(|| "None".into())});
            for s in &wanted {
                p[s.as_str()] = json!(stats.statistic(s).unwrap_or_default());
            }
            p
        })
        .collect();
    Ok(json!({"Label": name, "Datapoints": datapoints}))
}

pub fn list(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    if input.get("IncludeLinkedAccounts").and_then(Value::as_bool) == Some(true) {
        return Err(invalid("Berth has no cross-account observability: IncludeLinkedAccounts must be false."));
    }
    if text(&input, "OwningAccount").is_some_and(|a| a != ctx.config().account) {
        return Err(invalid(format!("Berth serves one account ({}).", ctx.config().account)));
    }
    let filters: Vec<(String, Option<String>)> = input
        .get("Dimensions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| {
            Some((f.get("Name")?.as_str()?.to_string(), f.get("Value").and_then(Value::as_str).map(str::to_string)))
        })
        .collect();
    let m = &ctx.app.metrics;
    let recent = text(&input, "RecentlyActive").is_some();
    let since = now_ms(ctx) - 3 * HOUR_MS;
    let all: Vec<MetricId> = m
        .list(text(&input, "Namespace"), text(&input, "MetricName"), &filters)
        .into_iter()
        .filter(|id| !recent || m.last_time(id).is_some_and(|t| t >= since))
        .collect();
    let start = match text(&input, "NextToken") {
        Some(t) => {
            t.parse::<usize>().map_err(|_| ApiError::new(400, "InvalidNextToken", "The NextToken is not valid."))?
        }
        None => 0,
    };
    const PAGE: usize = 500;
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(PAGE)
        .map(|id| {
            let dims: Vec<Value> = id.dimensions.iter().map(|(k, v)| json!({"Name": k, "Value": v})).collect();
            json!({"Namespace": id.namespace, "MetricName": id.name, "Dimensions": dims})
        })
        .collect();
    let mut out = json!({"Metrics": page});
    if start + PAGE < all.len() {
        out["NextToken"] = json!((start + PAGE).to_string());
    }
    Ok(out)
}

pub fn data(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let (start, end) = (millis(&input, "StartTime").unwrap_or_default(), millis(&input, "EndTime").unwrap_or_default());
    if end <= start {
        return Err(invalid("The parameter StartTime must be less than the parameter EndTime."));
    }
    let queries = input.get("MetricDataQueries").and_then(Value::as_array).cloned().unwrap_or_default();
    if queries.is_empty() || queries.len() > 500 {
        return Err(invalid("MetricDataQueries takes 1 to 500 queries."));
    }
    let descending = text(&input, "ScanBy") != Some("TimestampAscending");
    let mut series: BTreeMap<String, Series> = BTreeMap::new();
    let mut stat_ids = Vec::new();
    let mut labels = BTreeMap::new();
    for q in &queries {
        let id = q.get("Id").and_then(Value::as_str).unwrap_or_default().to_string();
        if !id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(invalid(format!(
                "The Id '{id}' must start with a lowercase letter and hold only letters, digits and _."
            )));
        }
        if labels.contains_key(&id) {
            return Err(invalid(format!("The Id '{id}' is used by more than one query.")));
        }
        let (stat, expression) = (q.get("MetricStat"), q.get("Expression").and_then(Value::as_str));
        let label = match (stat, expression) {
            (Some(s), None) => {
                let metric = s.get("Metric").and_then(Value::as_object).cloned().unwrap_or_default();
                let name = text(&metric, "MetricName").unwrap_or_default().to_string();
                let stat_name = s.get("Stat").and_then(Value::as_str).unwrap_or_default();
                if !STATISTICS.contains(&stat_name) {
                    return Err(invalid(format!(
                        "The statistic '{stat_name}' is not one Berth keeps: {}.",
                        STATISTICS.join(", ")
                    )));
                }
                let period = s.get("Period").and_then(Value::as_i64).unwrap_or_default();
                check_period(period, start, end, 100_800)?;
                let id_of = MetricId::new(
                    text(&metric, "Namespace").unwrap_or_default(),
                    &name,
                    dimensions(&metric, "Dimensions"),
                );
                let points =
                    ctx.app.metrics.statistics(&id_of, start, end, period, s.get("Unit").and_then(Value::as_str));
                series.insert(
                    id.clone(),
                    points.into_iter().map(|(t, st, _)| (t, st.statistic(stat_name).unwrap_or_default())).collect(),
                );
                stat_ids.push(id.clone());
                name
            }
            (None, Some(_)) => id.clone(),
            _ => return Err(combination(format!("The query '{id}' needs exactly one of MetricStat and Expression."))),
        };
        labels.insert(id.clone(), q.get("Label").and_then(Value::as_str).map_or(label, str::to_string));
    }
    // Expressions in order: each may use the queries before it.
    for q in &queries {
        if let Some(e) = q.get("Expression").and_then(Value::as_str) {
            let id = q.get("Id").and_then(Value::as_str).unwrap_or_default().to_string();
            let result = evaluate(e, &series, &stat_ids)
                .map_err(|why| invalid(format!("The expression of '{id}' is invalid: {why}.")))?;
            series.insert(id, result);
        }
    }
    let results: Vec<Value> = queries
        .iter()
        .filter(|q| q.get("ReturnData").and_then(Value::as_bool) != Some(false))
        .map(|q| {
            let id = q.get("Id").and_then(Value::as_str).unwrap_or_default();
            let mut points: Vec<(i64, f64)> =
                series.get(id).map(|s| s.iter().map(|(t, v)| (*t, *v)).collect()).unwrap_or_default();
            if descending {
                points.reverse();
            }
            json!({
                "Id": id,
                "Label": labels[id],
                "Timestamps": points.iter().map(|(t, _)| *t as f64 / 1000.0).collect::<Vec<_>>(),
                "Values": points.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
                "StatusCode": "Complete",
            })
        })
        .collect();
    Ok(json!({"MetricDataResults": results, "Messages": []}))
}
