use super::*;

fn record(outcome: MigrationOutcome) -> MigrationRecord {
    MigrationRecord {
        project: "shop".into(),
        migration: "migrate".into(),
        digest: "sha256:aaa".into(),
        image: "app:v1".into(),
        commit: Some("abc".into()),
        started_at: now_rfc3339(),
        ended_at: now_rfc3339(),
        exit_code: if outcome == MigrationOutcome::Succeeded {
            0
        } else {
            1
        },
        duration_ms: 5,
        outcome,
        output: "done".into(),
        attempts: 0,
        host: Some("web-1".into()),
    }
}

#[test]
fn resolving_by_hand_records_the_operator_and_a_success_stays_final() {
    let dir = tempfile::tempdir().unwrap();
    let l = SqliteLedger::open(&dir.path().join("ledger.db")).unwrap();
    let mut r = Resolution {
        project: None,
        migration: "migrate".into(),
        digest: "sha256:aaa".into(),
        outcome: MigrationOutcome::Succeeded,
        by: "ops@web-1".into(),
    };
    assert!(l
        .resolve_migration(&r)
        .unwrap_err()
        .message
        .contains("--project"));
    r.project = Some("shop".into());
    l.record_migration(&record(MigrationOutcome::Failed))
        .unwrap();
    let done = l.resolve_migration(&r).unwrap();
    assert_eq!(done.outcome, MigrationOutcome::Succeeded);
    assert_eq!(done.host.as_deref(), Some("ops@web-1"));
    assert_eq!(done.output, "resolved by hand by ops@web-1");
    r.outcome = MigrationOutcome::Failed;
    assert!(l
        .resolve_migration(&r)
        .unwrap_err()
        .message
        .contains("a success is final"));
}

#[test]
fn a_success_is_final_and_attempts_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let l = SqliteLedger::open(&dir.path().join("ledger.db")).unwrap();
    assert!(l
        .migration("shop", "migrate", "sha256:aaa")
        .unwrap()
        .is_none());
    l.record_migration(&record(MigrationOutcome::Failed))
        .unwrap();
    l.record_migration(&record(MigrationOutcome::Succeeded))
        .unwrap();
    l.record_migration(&record(MigrationOutcome::Failed))
        .unwrap();
    let r = l
        .migration("shop", "migrate", "sha256:aaa")
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.outcome, r.attempts, r.exit_code),
        (MigrationOutcome::Succeeded, 2, 0)
    );
}

#[test]
fn survives_reopening_and_reads_from_a_second_connection_while_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let writer = SqliteLedger::open(&path).unwrap();
    let reader = SqliteLedger::open(&path).unwrap();
    for i in 0..20 {
        let d = DeployRecord {
            id: 0,
            host: Some("web-1".into()),
            project: "shop".into(),
            commit: Some(format!("c{i}")),
            started_at: now_rfc3339(),
            ended_at: now_rfc3339(),
            services: vec![ServiceDeploy {
                service: if i % 2 == 0 { "api" } else { "web" }.into(),
                from: Some("app:v1".into()),
                to: Some("app:v2".into()),
                outcome: "converged".into(),
                error: None,
            }],
            migrations: vec![],
        };
        writer.record_deploy(&d).unwrap();
        assert_eq!(
            reader.deploys(Some("shop"), None, 100).unwrap().len(),
            i + 1
        );
    }
    drop(writer);
    let again = SqliteLedger::open(&path).unwrap();
    let api = again.deploys(Some("shop"), Some("api"), 3).unwrap();
    assert_eq!(api[0].host.as_deref(), Some("web-1"));
    assert_eq!(
        api.iter()
            .map(|d| d.commit.clone().unwrap())
            .collect::<Vec<_>>(),
        ["c18", "c16", "c14"]
    );
}
