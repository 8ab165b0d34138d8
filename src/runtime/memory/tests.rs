//! The memory engine keeps its promises: what tests script is what the executor sees.

use std::time::Duration;

use futures_util::StreamExt;

use super::{Behaviour, MemoryEngine, Op};
use crate::runtime::{ContainerSpec, Engine, RunState, RuntimeError};

fn spec(name: &str, image: &str, restart: bool) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        image: image.into(),
        restart,
        ..ContainerSpec::default()
    }
}

#[tokio::test(start_paused = true)]
async fn names_are_unique_and_a_container_is_found_by_name_or_id() {
    let e = MemoryEngine::new();
    e.add_image("app:v1");
    let id = e.create(&spec("shop-api-1", "app:v1", true)).await.unwrap();
    assert!(matches!(
        e.create(&spec("shop-api-1", "app:v1", true)).await,
        Err(RuntimeError::Conflict(_))
    ));
    assert_eq!(
        e.inspect("shop-api-1").await.unwrap().state,
        e.inspect(&id).await.unwrap().state
    );
    let other = e.create(&spec("shop-api-2", "app:v1", true)).await.unwrap();
    assert!(matches!(
        e.rename(&other, "shop-api-1").await,
        Err(RuntimeError::Conflict(_))
    ));
    assert!(matches!(
        e.create(&spec("x", "never-pulled:1", true)).await,
        Err(RuntimeError::NotFound(_))
    ));
    assert_eq!(
        e.calls_of(&[Op::Create, Op::Rename]),
        [
            "create shop-api-1",
            "create shop-api-1 (failed)",
            "create shop-api-2",
            "rename shop-api-2 shop-api-1 (failed)",
            "create x (failed)",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn injected_failures_take_the_calls_they_were_told_to() {
    let e = MemoryEngine::new();
    e.fail_next(Op::Pull, "app:v1", 2);
    assert!(matches!(
        e.pull("app:v1", None).await,
        Err(RuntimeError::Pull { .. })
    ));
    assert!(e.pull("app:v1", None).await.is_err());
    e.pull("app:v1", None).await.unwrap();
    assert!(e.image_present("app:v1"));
    e.fail(Op::Start, "*");
    let id = e.create(&spec("a", "app:v1", true)).await.unwrap();
    assert!(e.start(&id).await.is_err());
    e.heal(Op::Start);
    e.start(&id).await.unwrap();
    assert_eq!(e.running(), ["a app:v1"]);
}

#[tokio::test(start_paused = true)]
async fn a_slow_pull_takes_its_time_on_the_paused_clock() {
    let e = MemoryEngine::new();
    e.slow_pull("app:v1", Duration::from_secs(90));
    let t = tokio::time::Instant::now();
    e.pull("app:v1", None).await.unwrap();
    assert_eq!(t.elapsed(), Duration::from_secs(90));
}

#[tokio::test(start_paused = true)]
async fn a_one_shot_container_exits_with_its_code_and_wait_returns_it() {
    let e = MemoryEngine::new();
    e.add_image("app:v1").behave(
        "app:v1",
        Behaviour::no_check().exits_after(Duration::from_secs(4), 3),
    );
    let id = e.create(&spec("job", "app:v1", false)).await.unwrap();
    e.start(&id).await.unwrap();
    let t = tokio::time::Instant::now();
    assert_eq!(e.wait(&id).await.unwrap(), 3);
    assert_eq!(t.elapsed(), Duration::from_secs(4));
    assert_eq!(e.container("job").unwrap().state, RunState::Exited(Some(3)));
}

#[tokio::test(start_paused = true)]
async fn deaths_and_removals_are_events_and_a_broken_stream_says_so() {
    let e = MemoryEngine::new();
    e.add_image("app:v1");
    let mut events = e.events();
    let id = e.create(&spec("a", "app:v1", true)).await.unwrap();
    e.start(&id).await.unwrap();
    e.crash("a", 137).unwrap();
    assert!(matches!(events.next().await, Some(Ok(()))));
    e.remove(&id).await.unwrap();
    assert!(matches!(events.next().await, Some(Ok(()))));
    e.break_events();
    assert!(matches!(events.next().await, Some(Err(_))));
}
