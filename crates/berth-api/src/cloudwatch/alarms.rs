//! Metric alarms: PutMetricAlarm, DescribeAlarms, DescribeAlarmsForMetric, DeleteAlarms,
//! SetAlarmState, DescribeAlarmHistory, and the loop that evaluates every alarm once per
//! period over its metric's complete periods and runs its actions
//! (`berth_control::alarms::act`): on each transition into the state they are listed under
//! (SetAlarmState's too), and — Auto Scaling actions, as on AWS — again at each evaluation
//! while the alarm stays in that state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_control::alarms::{ALARMS, AlarmRecord, HistoryItem, Trigger, act, check_action};
use berth_metrics::alarm::{AlarmState, Comparison, Missing, Rule, verdict};
use berth_metrics::{MetricId, STATISTICS};
use berth_store::{Compare, KeyRange, Op, StoreExt, Txn};
use serde_json::{Value, json};

use super::{combination, dimensions, invalid};
use crate::App;
use crate::ecs::{Ctx, Obj, decode, encode, strings, text};
use crate::error::{ApiError, ApiResult};

fn not_found(name: &str) -> ApiError {
    ApiError::new(404, "ResourceNotFound", format!("Alarm {name} does not exist."))
}

/// Refuses what Berth cannot do with an alarm rather than store it to no effect.
fn refuse_unsupported(input: &Obj) -> ApiResult<()> {
    for (member, why) in [
        ("Metrics", "metric math alarms are not supported yet; give Namespace, MetricName and Statistic"),
        ("ExtendedStatistic", "Berth keeps no percentiles"),
        ("ThresholdMetricId", "anomaly detection bands are not supported"),
        ("EvaluationCriteria", "PromQL alarms are not supported"),
        ("EvaluationInterval", "PromQL alarms are not supported"),
        ("EvaluateLowSampleCountPercentile", "Berth keeps no percentiles"),
    ] {
        if input.contains_key(member) {
            return Err(invalid(format!("{member}: {why}.")));
        }
    }
    Ok(())
}

/// The actions of `member`, each one Berth can carry out (an Application Auto Scaling
/// policy that exists), at most 5 as CloudWatch allows.
fn actions(ctx: &Ctx<'_>, input: &Obj, member: &str) -> ApiResult<Vec<String>> {
    let arns = strings(input, member);
    if arns.len() > 5 {
        return Err(invalid(format!("{member} can have at most 5 actions.")));
    }
    for arn in &arns {
        check_action(ctx, arn)?.map_err(|why| invalid(format!("{member}: {why}")))?;
    }
    Ok(arns)
}

fn rule_of(a: &AlarmRecord) -> Rule {
    Rule {
        comparison: Comparison::parse(&a.comparison).expect("checked when put"),
        threshold: a.threshold,
        datapoints_to_alarm: a.datapoints_to_alarm,
        missing: Missing::parse(&a.treat_missing_data).expect("checked when put"),
    }
}

pub async fn put(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    refuse_unsupported(&input)?;
    let name = text(&input, "AlarmName").unwrap_or_default().to_string();
    let required = |m: &str| {
        input
            .get(m)
            .is_some()
            .then_some(())
            .ok_or_else(|| ApiError::new(400, "MissingParameter", format!("The parameter {m} is required.")))
    };
    for m in ["Namespace", "MetricName", "Statistic", "Period", "EvaluationPeriods", "Threshold", "ComparisonOperator"]
    {
        required(m)?;
    }
    let comparison = text(&input, "ComparisonOperator").unwrap_or_default();
    if Comparison::parse(comparison).is_none() {
        return Err(invalid(format!(
            "ComparisonOperator {comparison} needs an anomaly detection band, which Berth does not have."
        )));
    }
    let missing = text(&input, "TreatMissingData").unwrap_or("missing");
    if Missing::parse(missing).is_none() {
        return Err(invalid(format!("TreatMissingData is missing, ignore, breaching or notBreaching, not {missing}.")));
    }
    let statistic = text(&input, "Statistic").unwrap_or_default();
    if !STATISTICS.contains(&statistic) {
        return Err(invalid(format!("Statistic {statistic} is not one of {}.", STATISTICS.join(", "))));
    }
    let period = input.get("Period").and_then(Value::as_i64).unwrap_or_default();
    if period <= 0 || (period >= 60 && period % 60 != 0) || (period < 60 && ![10, 30].contains(&period)) {
        return Err(invalid(format!("Period must be 10, 30 or a multiple of 60, not {period}.")));
    }
    let n = input.get("EvaluationPeriods").and_then(Value::as_i64).unwrap_or_default();
    let m = input.get("DatapointsToAlarm").and_then(Value::as_i64).unwrap_or(n);
    if n < 1 || m < 1 || m > n {
        return Err(invalid(format!("DatapointsToAlarm ({m}) must be between 1 and EvaluationPeriods ({n}).")));
    }
    if period * n > 7 * 86_400 {
        return Err(invalid("Period times EvaluationPeriods must be at most 7 days."));
    }
    let alarm_actions = actions(ctx, &input, "AlarmActions")?;
    let ok_actions = actions(ctx, &input, "OKActions")?;
    let insufficient_data_actions = actions(ctx, &input, "InsufficientDataActions")?;
    let now = ctx.timestamp();
    let key = ctx.keys.alarm(&name);
    let existing: Option<(berth_store::KeyValue, AlarmRecord)> = match ctx.store().get(&key)? {
        Some(kv) => Some((kv.clone(), decode(&kv)?)),
        None => None,
    };
    let mut alarm = AlarmRecord {
        arn: format!("arn:aws:cloudwatch:{}:{}:alarm:{name}", ctx.name, ctx.config().account),
        name: name.clone(),
        description: text(&input, "AlarmDescription").map(str::to_string),
        namespace: text(&input, "Namespace").unwrap_or_default().into(),
        metric_name: text(&input, "MetricName").unwrap_or_default().into(),
        dimensions: dimensions(&input, "Dimensions"),
        statistic: statistic.into(),
        period,
        evaluation_periods: n as usize,
        datapoints_to_alarm: m as usize,
        threshold: input.get("Threshold").and_then(Value::as_f64).unwrap_or_default(),
        comparison: comparison.into(),
        treat_missing_data: missing.into(),
        unit: text(&input, "Unit").map(str::to_string),
        actions_enabled: input.get("ActionsEnabled").and_then(Value::as_bool).unwrap_or(true),
        alarm_actions,
        ok_actions,
        insufficient_data_actions,
        state: AlarmState::InsufficientData,
        state_reason: "Unchecked: Initial alarm creation".into(),
        state_reason_data: None,
        state_updated: now,
        state_transitioned: now,
        configuration_updated: now,
        history: Vec::new(),
    };
    // An update keeps the alarm's state and history.
    if let Some((_, old)) = &existing {
        alarm.keep_state_of(old);
    }
    let verb = if existing.is_some() { "updated" } else { "created" };
    alarm.remember(HistoryItem {
        timestamp: now,
        kind: "ConfigurationUpdate".into(),
        summary: format!("Alarm \"{name}\" {verb}"),
        data: String::new(),
    });
    let guard = match &existing {
        Some((kv, _)) => Compare::unchanged(&key, kv.mod_revision),
        None => Compare::absent(&key),
    };
    if !ctx.store().txn(Txn::new().when(vec![guard]).and_then(vec![Op::put(&key, encode(&alarm))])).await?.succeeded {
        return Err(ApiError::new(
            429,
            "ConcurrentModificationException",
            format!("Alarm {name} was changed meanwhile; retry."),
        ));
    }
    Ok(json!({}))
}

fn describe_one(a: &AlarmRecord) -> Value {
    let dims: Vec<Value> = a.dimensions.iter().map(|(k, v)| json!({"Name": k, "Value": v})).collect();
    let mut out = json!({
        "AlarmName": a.name, "AlarmArn": a.arn, "AlarmConfigurationUpdatedTimestamp": a.configuration_updated,
        "ActionsEnabled": a.actions_enabled, "OKActions": a.ok_actions, "AlarmActions": a.alarm_actions,
        "InsufficientDataActions": a.insufficient_data_actions, "StateValue": a.state.name(), "StateReason": a.state_reason,
        "StateUpdatedTimestamp": a.state_updated, "StateTransitionedTimestamp": a.state_transitioned,
        "MetricName": a.metric_name, "Namespace": a.namespace, "Statistic": a.statistic, "Dimensions": dims,
        "Period": a.period, "EvaluationPeriods": a.evaluation_periods, "DatapointsToAlarm": a.datapoints_to_alarm,
        "Threshold": a.threshold, "ComparisonOperator": a.comparison, "TreatMissingData": a.treat_missing_data,
    });
    for (member, value) in
        [("AlarmDescription", &a.description), ("Unit", &a.unit), ("StateReasonData", &a.state_reason_data)]
    {
        if let Some(v) = value {
            out[member] = json!(v);
        }
    }
    out
}

fn all(ctx: &Ctx<'_>) -> ApiResult<Vec<AlarmRecord>> {
    ctx.store().list(&ctx.keys.alarms())?.iter().map(decode).collect()
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    for member in ["ChildrenOfAlarmName", "ParentsOfAlarmName"] {
        if input.contains_key(member) {
            return Err(invalid(format!("{member}: Berth has no composite alarms to look up.")));
        }
    }
    let action_prefix = text(&input, "ActionPrefix");
    let names = strings(&input, "AlarmNames");
    let prefix = text(&input, "AlarmNamePrefix");
    if !names.is_empty() && prefix.is_some() {
        return Err(combination("AlarmNames and AlarmNamePrefix cannot be given together."));
    }
    let types = strings(&input, "AlarmTypes");
    let want_metric = types.is_empty() || types.iter().any(|t| t == "MetricAlarm");
    let state = text(&input, "StateValue");
    let max = input.get("MaxRecords").and_then(Value::as_i64).unwrap_or(50) as usize;
    let matching: Vec<Value> = all(ctx)?
        .iter()
        .filter(|a| want_metric && (names.is_empty() || names.contains(&a.name)))
        .filter(|a| prefix.is_none_or(|p| a.name.starts_with(p)) && state.is_none_or(|s| a.state.name() == s))
        .filter(|a| {
            action_prefix.is_none_or(|p| {
                [&a.alarm_actions, &a.ok_actions, &a.insufficient_data_actions]
                    .iter()
                    .any(|l| l.iter().any(|x| x.starts_with(p)))
            })
        })
        .map(describe_one)
        .collect();
    let start = match text(&input, "NextToken") {
        Some(t) => {
            t.parse::<usize>().map_err(|_| ApiError::new(400, "InvalidNextToken", "The NextToken is not valid."))?
        }
        None => 0,
    };
    let page: Vec<Value> = matching.iter().skip(start).take(max).cloned().collect();
    let mut out = json!({"MetricAlarms": page, "CompositeAlarms": []});
    if start + max < matching.len() {
        out["NextToken"] = json!((start + max).to_string());
    }
    Ok(out)
}

pub fn describe_for_metric(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let metric = MetricId::new(
        text(&input, "Namespace").unwrap_or_default(),
        text(&input, "MetricName").unwrap_or_default(),
        dimensions(&input, "Dimensions"),
    );
    let statistic = text(&input, "Statistic");
    let period = input.get("Period").and_then(Value::as_i64);
    let alarms: Vec<Value> = all(ctx)?
        .iter()
        .filter(|a| MetricId::new(&a.namespace, &a.metric_name, a.dimensions.clone()) == metric)
        .filter(|a| statistic.is_none_or(|s| a.statistic == s) && period.is_none_or(|p| a.period == p))
        .map(describe_one)
        .collect();
    Ok(json!({"MetricAlarms": alarms}))
}

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let names = strings(&input, "AlarmNames");
    // AWS deletes none when one is missing.
    for n in &names {
        if ctx.store().get(&ctx.keys.alarm(n))?.is_none() {
            return Err(not_found(n));
        }
    }
    let ops = names.iter().map(|n| Op::delete(&ctx.keys.alarm(n))).collect();
    ctx.store().txn(Txn::new().and_then(ops)).await?;
    Ok(json!({}))
}

/// Changes an alarm; the alarm before and after.
async fn change(ctx: &Ctx<'_>, name: &str, f: impl Fn(&mut AlarmRecord)) -> ApiResult<(AlarmRecord, AlarmRecord)> {
    let f = &f;
    berth_control::store::retry(move || async move {
        let key = ctx.keys.alarm(name);
        let kv = ctx.store().get(&key)?.ok_or_else(|| not_found(name))?;
        let before: AlarmRecord = decode(&kv)?;
        let mut alarm = before.clone();
        f(&mut alarm);
        let txn = Txn::new()
            .when(vec![Compare::unchanged(&key, kv.mod_revision)])
            .and_then(vec![Op::put(&key, encode(&alarm))]);
        Ok::<_, ApiError>(ctx.store().txn(txn).await?.succeeded.then_some((before, alarm)))
    })
    .await
}

pub async fn set_state(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let name = text(&input, "AlarmName").unwrap_or_default();
    let state = AlarmState::parse(text(&input, "StateValue").unwrap_or_default()).expect("the model's enum");
    let reason = text(&input, "StateReason").unwrap_or_default().to_string();
    let data = text(&input, "StateReasonData").map(str::to_string);
    if let Some(d) = &data
        && serde_json::from_str::<Value>(d).is_err()
    {
        return Err(ApiError::new(400, "InvalidFormat", "StateReasonData is not valid JSON."));
    }
    let now = ctx.timestamp();
    let (before, after) = change(ctx, name, |a| a.set_state(state, reason.clone(), data.clone(), now)).await?;
    if before.state != after.state {
        act(ctx, &after, Trigger::Transition).await?;
    }
    Ok(json!({}))
}

pub fn history(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let name = text(&input, "AlarmName");
    let kind = text(&input, "HistoryItemType");
    let start = input.get("StartDate").and_then(Value::as_f64);
    let end = input.get("EndDate").and_then(Value::as_f64);
    let max = input.get("MaxRecords").and_then(Value::as_i64).unwrap_or(100) as usize;
    let mut items: Vec<(f64, Value)> = Vec::new();
    for a in all(ctx)?.iter().filter(|a| name.is_none_or(|n| a.name == n)) {
        for h in &a.history {
            if kind.is_some_and(|k| h.kind != k)
                || start.is_some_and(|s| h.timestamp < s)
                || end.is_some_and(|e| h.timestamp > e)
            {
                continue;
            }
            items.push((
                h.timestamp,
                json!({"AlarmName": a.name, "AlarmType": "MetricAlarm", "Timestamp": h.timestamp,
                "HistoryItemType": h.kind, "HistorySummary": h.summary, "HistoryData": h.data}),
            ));
        }
    }
    items.sort_by(|a, b| b.0.total_cmp(&a.0));
    if text(&input, "ScanBy") == Some("TimestampAscending") {
        items.reverse();
    }
    Ok(json!({"AlarmHistoryItems": items.into_iter().take(max).map(|(_, v)| v).collect::<Vec<_>>()}))
}

/// How many periods before the last `EvaluationPeriods` an evaluation also looks at.
const LOOK_BACK: i64 = 2;

/// Evaluates `alarm` at `now_ms` over its last complete periods: the new state and its reason
/// when the evaluation found one.
///
/// As CloudWatch does, the evaluation range is a little longer than `EvaluationPeriods`: when
/// it holds at least N datapoints, the newest N decide (a period whose data arrived late or
/// fell into the next period does not count as missing); with fewer, all of them decide and
/// the rest count as `TreatMissingData` says.
pub fn evaluate(
    metrics: &berth_metrics::Metrics,
    alarm: &AlarmRecord,
    now_ms: i64,
) -> Option<(AlarmState, String, String)> {
    let period_ms = alarm.period * 1000;
    let n = alarm.evaluation_periods;
    let end = now_ms.div_euclid(period_ms) * period_ms;
    let start = end - period_ms * (n as i64 + LOOK_BACK);
    let id = MetricId::new(&alarm.namespace, &alarm.metric_name, alarm.dimensions.clone());
    let found: Vec<f64> = metrics
        .statistics(&id, start, end, alarm.period, alarm.unit.as_deref())
        .into_iter()
        .map(|(_, s, _)| s.statistic(&alarm.statistic).unwrap_or_default())
        .collect();
    // Oldest first: the newest N real datapoints, or all of them and missing ones after.
    let real = &found[found.len().saturating_sub(n)..];
    let mut points: Vec<Option<f64>> = vec![None; n - real.len()];
    points.extend(real.iter().copied().map(Some));
    let state = alarm.state.after(verdict(&rule_of(alarm), &points));
    let shown: Vec<String> = points.iter().rev().flatten().map(|v| format!("{v}")).collect();
    let breaching =
        points.iter().flatten().filter(|v| rule_of(alarm).comparison.breaches(**v, alarm.threshold)).count();
    let reason = match state {
        AlarmState::InsufficientData => {
            format!("Insufficient Data: {} datapoints were unknown.", alarm.evaluation_periods)
        }
        _ => format!(
            "Threshold Crossed: {breaching} out of the last {} datapoints [{}] were {} the threshold ({}) (minimum {} datapoints for OK -> ALARM transition).",
            alarm.evaluation_periods,
            shown.join(", "),
            match rule_of(alarm).comparison {
                Comparison::GreaterThanThreshold => "greater than",
                Comparison::GreaterThanOrEqualToThreshold => "greater than or equal to",
                Comparison::LessThanThreshold => "less than",
                Comparison::LessThanOrEqualToThreshold => "less than or equal to",
            },
            alarm.threshold,
            alarm.datapoints_to_alarm
        ),
    };
    let data = json!({"version": "1.0", "statistic": alarm.statistic, "period": alarm.period, "threshold": alarm.threshold,
                      "recentDatapoints": points.iter().rev().flatten().collect::<Vec<_>>(), "evaluatedDatapoints": shown.len()});
    Some((state, reason, data.to_string()))
}

/// Evaluates every alarm of every region once per its period, until the server stops.
pub async fn run(app: Arc<App>) {
    let mut last: HashMap<String, i64> = HashMap::new();
    loop {
        tokio::select! {
            _ = app.closed() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if let Err(e) = sweep(&app, &mut last).await {
            tracing::warn!(error = %e, "alarm evaluation");
        }
    }
}

/// One pass: the alarms whose period has come round are evaluated and, when their state or
/// reason changed, written back; their actions run on a transition, and Auto Scaling actions
/// again while the state holds.
pub async fn sweep(app: &App, last: &mut HashMap<String, i64>) -> ApiResult<usize> {
    let now = app.control.clock.now();
    let now_ms = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let mut changed = 0;
    for kv in app.store().range(&KeyRange::prefix(ALARMS))?.kvs {
        let alarm: AlarmRecord = decode(&kv)?;
        let due = last.get(&kv.key).is_none_or(|t| now_ms - t >= alarm.period.min(60) * 1000);
        if !due {
            continue;
        }
        last.insert(kv.key.clone(), now_ms);
        let Some((state, reason, data)) = evaluate(&app.metrics, &alarm, now_ms) else { continue };
        let Some((region, _)) = kv.key.strip_prefix(ALARMS).and_then(|k| k.split_once('/')) else { continue };
        let region = app.control.region_at(region, now);
        let mut updated = alarm.clone();
        updated.set_state(state, reason.clone(), Some(data), now_ms as f64 / 1000.0);
        if state == alarm.state && reason == alarm.state_reason {
            act(&region, &updated, Trigger::Repeat).await?;
            continue;
        }
        let txn = Txn::new()
            .when(vec![Compare::unchanged(&kv.key, kv.mod_revision)])
            .and_then(vec![Op::put(&kv.key, encode(&updated))]);
        if !app.store().txn(txn).await?.succeeded {
            continue;
        }
        if state != alarm.state {
            changed += 1;
            act(&region, &updated, Trigger::Transition).await?;
        } else {
            act(&region, &updated, Trigger::Repeat).await?;
        }
    }
    Ok(changed)
}
