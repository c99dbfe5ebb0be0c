use serde_json::json;

use super::*;
use crate::control::fake::FakeControlPlane;
use crate::runtime::fake::{FakeRuntime, Script};

fn options(extra: Value) -> AwsLogs {
    let mut o = json!({"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "web"});
    o.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    AwsLogs::parse(o.as_object().unwrap()).unwrap()
}

#[tokio::test]
async fn prepare_makes_the_stream_and_the_group_only_when_asked() {
    let control = FakeControlPlane::new("arn:ci");
    let e = prepare(&control, &options(json!({})), "web/app/t1").await.unwrap_err();
    assert!(
        e.starts_with(
            "CannotStartContainerError: failed to initialize logging driver: failed to create CloudWatch log stream"
        ),
        "{e}"
    );
    assert!(e.contains("ResourceNotFoundException: The specified log group does not exist."), "{e}");
    prepare(&control, &options(json!({"awslogs-create-group": "true"})), "web/app/t1").await.unwrap();
    // Again (a restarted container): both exist, which is fine.
    prepare(&control, &options(json!({"awslogs-create-group": "true"})), "web/app/t1").await.unwrap();
    assert_eq!(control.log_streams(), [("/ecs/web".to_string(), "web/app/t1".to_string())]);
}

#[test]
fn only_awslogs_definitions_have_options() {
    let def = |v: Value| v.as_object().unwrap().clone();
    assert!(of(&def(json!({"name": "a"}))).unwrap().is_none());
    assert!(of(&def(json!({"logConfiguration": {"logDriver": "json-file"}}))).unwrap().is_none());
    let o = of(&def(
        json!({"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-region": "r"}}}),
    ));
    assert_eq!(o.unwrap().unwrap().group, "g");
    let bad = of(&def(json!({"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-region": "r"}}})));
    assert!(bad.unwrap_err().contains("awslogs-group is required"));
}

async fn shipped(runtime: &FakeRuntime, control: &Arc<FakeControlPlane>, id: &str, o: AwsLogs, state: &Path) {
    let s = Shipping {
        runtime: Arc::new(runtime.clone()),
        control: control.clone(),
        state_dir: state.to_path_buf(),
        container_id: id.to_string(),
        options: o,
        stream: "web/app/t1".into(),
    };
    spawn(s, None).await.unwrap();
}

#[tokio::test]
async fn output_is_shipped_once_with_multiline_events_even_across_a_restart() {
    let runtime = FakeRuntime::new();
    let control = Arc::new(FakeControlPlane::new("arn:ci"));
    let state = tempfile::tempdir().unwrap();
    let o = options(json!({"awslogs-create-group": "true", "awslogs-multiline-pattern": "^\\d{4}-"}));
    prepare(control.as_ref(), &o, "web/app/t1").await.unwrap();
    let output = vec![
        (false, "2026-11-30 start\n".to_string()),
        (true, "2026-11-30 boom\n  at a()\n".to_string()),
        (true, "  at b()\n2026-11-30 after".to_string()),
    ];
    runtime.script("app", Script { output: output.clone(), ..Default::default() });
    let id = runtime.existing("arn:task", "arn:ci", "app", Some(0));
    shipped(&runtime, &control, &id, o.clone(), state.path()).await;
    let want = ["2026-11-30 start", "2026-11-30 boom\n  at a()\n  at b()", "2026-11-30 after"];
    assert_eq!(control.logged("/ecs/web", "web/app/t1").unwrap(), want);
    // The agent restarts and follows the same output again: nothing is sent twice.
    shipped(&runtime, &control, &id, o.clone(), state.path()).await;
    assert_eq!(control.logged("/ecs/web", "web/app/t1").unwrap(), want);
    // The container wrote more since: only that goes.
    let mut more = output;
    more.push((false, "\n2026-11-30 later\n".into()));
    runtime.script("app", Script { output: more, ..Default::default() });
    shipped(&runtime, &control, &id, o, state.path()).await;
    assert_eq!(control.logged("/ecs/web", "web/app/t1").unwrap().last().unwrap(), "2026-11-30 later");
}

#[tokio::test]
async fn many_lines_go_in_batches_within_the_limits() {
    let runtime = FakeRuntime::new();
    let control = Arc::new(FakeControlPlane::new("arn:ci"));
    let state = tempfile::tempdir().unwrap();
    let o = options(json!({"awslogs-create-group": "true"}));
    prepare(control.as_ref(), &o, "web/app/t1").await.unwrap();
    let text: String = (0..25_000).map(|i| format!("line {i}\n")).collect();
    runtime.script("app", Script { output: vec![(false, text)], ..Default::default() });
    let id = runtime.existing("arn:task", "arn:ci", "app", Some(0));
    shipped(&runtime, &control, &id, o, state.path()).await;
    let logged = control.logged("/ecs/web", "web/app/t1").unwrap();
    assert_eq!(logged.len(), 25_000);
    assert_eq!(logged[24_999], "line 24999");
}
