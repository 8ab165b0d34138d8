use super::*;

#[test]
fn every_string_of_an_agents_answer_is_masked() {
    let mut v = serde_json::json!({
        "repo": "https://u:tok-a@git.example/x.git",
        "last_error": "fetch https://u:tok-a@git.example/x.git (main): 401",
        "services": { "api": { "last_error": "see postgres://a:pw-b@db/x" } },
        "list": ["http://h/?key=k-c", 3, null],
        "branch": "main"
    });
    redact_strings(&mut v);
    assert_eq!(
        v,
        serde_json::json!({
            "repo": "https://u:***@git.example/x.git",
            "last_error": "fetch https://u:***@git.example/x.git (main): 401",
            "services": { "api": { "last_error": "see postgres://a:***@db/x" } },
            "list": ["http://h/?key=***", 3, null],
            "branch": "main"
        })
    );
}
