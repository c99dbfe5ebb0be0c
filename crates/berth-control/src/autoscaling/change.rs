//! One change to a scalable target, all or nothing: the target record, its ECS service's
//! `desiredCount`, the activities it leaves and any alarms it makes or removes are written
//! in one transaction guarded by the revisions they were read at, and worked out again on
//! a lost race. The scheduler is woken when the service changed.

use berth_store::{Compare, KeyValue, Op, Txn};

use super::records::{ACTIVITIES_KEPT, ActivityRecord, ActivityStatus, NotScaled, TargetRecord};
use super::{ScalingError, service_of};
use crate::Region;
use crate::error::ControlResult;
use crate::services::{ServiceRecord, ServiceStatus};
use crate::store::{decode, encode, retry};

/// What a change reads, and changes in place.
pub struct Draft {
    /// The target (`None`: not registered; set to `None` to deregister).
    pub target: Option<TargetRecord>,
    /// The target's ECS service while it is ACTIVE.
    pub service: Option<ServiceRecord>,
    /// Activities to record (in the order they happened).
    pub activities: Vec<ActivityRecord>,
    /// Other writes in the same transaction (alarms).
    pub ops: Vec<Op>,
}

impl Draft {
    /// The service's desired count: the target's current capacity.
    pub fn current(&self) -> Option<i64> {
        self.service.as_ref().map(ServiceRecord::desired)
    }

    /// Sets the service's desired count and records the activity AWS shows for it.
    pub fn set_capacity(
        &mut self,
        region: &Region<'_>,
        resource_id: &str,
        to: i64,
        cause: String,
    ) -> ControlResult<()> {
        let Some(service) = self.service.as_mut() else {
            return Err(ScalingError::Validation(format!("ECS service doesn't exist: {resource_id}")).into());
        };
        service.set_desired(to).map_err(|e| ScalingError::Validation(e.to_string()))?;
        let message = format!("Successfully set desired count to {to}. Change successfully fulfilled by ecs.");
        self.succeeded(region, resource_id, format!("Setting desired count to {to}."), cause, message);
        Ok(())
    }

    /// Records a successful activity (which ends the run of repeated not scaled ones).
    pub fn succeeded(
        &mut self,
        region: &Region<'_>,
        resource_id: &str,
        description: String,
        cause: String,
        message: String,
    ) {
        if let Some(t) = self.target.as_mut() {
            t.last_not_scaled = None;
        }
        let now = region.timestamp();
        self.activities.push(ActivityRecord {
            id: region.control.ids.uuid(),
            resource_id: resource_id.to_string(),
            description,
            cause,
            start: now,
            end: Some(now),
            status: ActivityStatus::Successful,
            message,
            not_scaled: Vec::new(),
        });
    }

    /// Records a failed or not scaled activity, unless it repeats the target's last one.
    pub fn failed(&mut self, region: &Region<'_>, resource_id: &str, activity: Failed) {
        let signature = format!("{}|{}|{:?}", activity.cause, activity.message, activity.not_scaled);
        if let Some(t) = self.target.as_mut() {
            if t.last_not_scaled.as_deref() == Some(signature.as_str()) {
                return;
            }
            t.last_not_scaled = Some(signature);
        }
        let now = region.timestamp();
        self.activities.push(ActivityRecord {
            id: region.control.ids.uuid(),
            resource_id: resource_id.to_string(),
            description: activity.description,
            cause: activity.cause,
            start: now,
            end: Some(now),
            status: ActivityStatus::Failed,
            message: activity.message,
            not_scaled: activity.not_scaled.into_iter().collect(),
        });
    }
}

/// A failed or not scaled activity's texts.
pub struct Failed {
    pub description: String,
    pub cause: String,
    pub message: String,
    pub not_scaled: Option<NotScaled>,
}

fn read_target(region: &Region<'_>, resource_id: &str) -> ControlResult<Option<(KeyValue, TargetRecord)>> {
    match region.store().get(&region.keys.scalable_target(resource_id))? {
        Some(kv) => {
            let t = decode(&kv)?;
            Ok(Some((kv, t)))
        }
        None => Ok(None),
    }
}

/// The ACTIVE ECS service a resource id names, with the key it was read at.
pub fn read_service(region: &Region<'_>, resource_id: &str) -> ControlResult<Option<(KeyValue, ServiceRecord)>> {
    let Some((cluster, name)) = service_of(resource_id) else { return Ok(None) };
    let Some(kv) = region.store().get(&region.keys.service(cluster, name))? else { return Ok(None) };
    let rec: ServiceRecord = decode(&kv)?;
    Ok((rec.status == ServiceStatus::Active).then_some((kv, rec)))
}

/// Runs `f` on a fresh [`Draft`] of the target `resource_id` and commits what it changed;
/// on a lost race, reads again and runs `f` again. `f`'s error leaves everything as it was.
pub async fn transact<T>(
    region: &Region<'_>,
    resource_id: &str,
    f: impl Fn(&mut Draft) -> ControlResult<T>,
) -> ControlResult<T> {
    let f = &f;
    retry(move || async move {
        let target = read_target(region, resource_id)?;
        let service = read_service(region, resource_id)?;
        let mut draft = Draft {
            target: target.as_ref().map(|(_, t)| t.clone()),
            service: service.as_ref().map(|(_, s)| s.clone()),
            activities: Vec::new(),
            ops: Vec::new(),
        };
        let out = f(&mut draft)?;
        let target_key = region.keys.scalable_target(resource_id);
        let mut guards = vec![match &target {
            Some((kv, _)) => Compare::unchanged(&target_key, kv.mod_revision),
            None => Compare::absent(&target_key),
        }];
        let mut ops = std::mem::take(&mut draft.ops);
        let service_changed = match (&service, &draft.service) {
            (Some((kv, before)), Some(after)) if before.desired() != after.desired() => {
                guards.push(Compare::unchanged(&kv.key, kv.mod_revision));
                ops.push(Op::put(&kv.key, encode(after)));
                true
            }
            _ => false,
        };
        match &mut draft.target {
            Some(t) => {
                for a in &draft.activities {
                    t.activity_seq += 1;
                    ops.push(Op::put(&region.keys.scaling_activity(resource_id, t.activity_seq), encode(a)));
                    if t.activity_seq > ACTIVITIES_KEPT {
                        ops.push(Op::delete(
                            &region.keys.scaling_activity(resource_id, t.activity_seq - ACTIVITIES_KEPT),
                        ));
                    }
                }
                if target.as_ref().is_none_or(|(_, before)| before != t) {
                    ops.push(Op::put(&target_key, encode(t)));
                }
            }
            None if target.is_some() => ops.push(Op::delete(&target_key)),
            None => {}
        }
        if ops.is_empty() {
            return Ok(Some(out));
        }
        if !region.store().txn(Txn::new().when(guards).and_then(ops)).await?.succeeded {
            return Ok(None);
        }
        if service_changed {
            region.control.wake_scheduler();
        }
        Ok(Some(out))
    })
    .await
}
