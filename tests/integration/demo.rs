//! `berth demo`, as README's first command runs it.

use crate::berth;
use crate::support::{docker_stdout, require_docker};

#[test]
fn the_demo_tells_the_whole_story_and_cleans_up() {
    require_docker();
    let r = berth(["demo"]);
    assert_eq!(r.code, 0, "{r:?}");
    let steps: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(
        steps,
        [
            "[1/6] building demo images v1, v2 and a broken v3 from this berth binary",
            steps[1],
            "[3/6] commit \"bump to v2\": a start-first rolling update, one replica at a time",
            "[4/6] commit \"release v3\" (its health check fails): refused by the health gate",
            "[5/6] git revert of \"release v3\": back to the last good release, nothing to do",
            "[6/6] git revert of \"bump to v2\": a rollback to v1, from the image already on the host",
        ]
    );
    assert!(
        steps[1].starts_with("[2/6] agent started, watching "),
        "{}",
        steps[1]
    );
    assert!(
        r.stdout
            .contains("      berth-demo-app-1 serves v1, berth-demo-app-2 serves v1\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("berth-demo-app-1-next: v2, starting"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("      agent: new replica berth-demo-app-1-next became unhealthy; the old replica kept serving\n"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("v3 never became healthy; its replica was removed and v2 kept serving"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .ends_with("cleaned up: containers, network and images of the demo removed\n"),
        "{}",
        r.stdout
    );
    assert_eq!(
        docker_stdout(["ps", "-aq", "--filter", "label=berth.project=berth-demo"]),
        ""
    );
    assert_eq!(docker_stdout(["images", "-q", "berth-demo/app"]), "");
}
