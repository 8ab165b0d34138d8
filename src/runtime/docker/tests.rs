use bollard::models::{ContainerSummary, ContainerSummaryStateEnum};

use super::convert::*;
use super::*;

#[test]
fn status_text_gives_health_and_exit_code() {
    assert_eq!(
        health_from_status("Up 3 seconds (healthy)"),
        HealthState::Healthy
    );
    assert_eq!(
        health_from_status("Up 1 second (health: starting)"),
        HealthState::Starting
    );
    assert_eq!(
        health_from_status("Up 9 seconds (unhealthy)"),
        HealthState::Unhealthy
    );
    assert_eq!(health_from_status("Up 2 hours"), HealthState::None);
    assert_eq!(
        exit_code_from_status("Exited (137) 3 seconds ago"),
        Some(137)
    );
    assert_eq!(exit_code_from_status("Up 2 hours"), None);
}

#[test]
fn a_managed_container_without_labels_is_an_error() {
    let c = ContainerSummary {
        id: Some("abc".into()),
        names: Some(vec!["/shop-api-1".into()]),
        labels: Some(HashMap::from([(labels::PROJECT.into(), "shop".into())])),
        state: Some(ContainerSummaryStateEnum::RUNNING),
        ..Default::default()
    };
    let e = convert_summary(c).unwrap_err();
    assert_eq!(
        e.to_string(),
        "container abc has unreadable berth labels: no berth.service label"
    );
}

#[test]
fn summaries_convert() {
    let c = ContainerSummary {
        id: Some("abc".into()),
        names: Some(vec!["/shop-api-2".into()]),
        labels: Some(HashMap::from([
            (labels::PROJECT.into(), "shop".into()),
            (labels::SERVICE.into(), "api".into()),
            (labels::SLOT.into(), "2".into()),
            (labels::SPEC.into(), "0123".into()),
            (labels::IMAGE.into(), "app:v1".into()),
        ])),
        state: Some(ContainerSummaryStateEnum::EXITED),
        status: Some("Exited (1) 2 seconds ago".into()),
        ..Default::default()
    };
    let o = convert_summary(c).unwrap();
    assert_eq!(
        (o.name.as_str(), o.slot, o.role),
        ("shop-api-2", 2, Role::Replica)
    );
    assert_eq!(o.state, RunState::Exited(Some(1)));
}
