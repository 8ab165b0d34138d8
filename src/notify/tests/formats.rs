//! Every format delivered over HTTPS to a local server with a test certificate, and
//! checked against its provider's documented schema: required fields, and sizes with a
//! message and a commit summary far over every limit.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tokio::sync::mpsc;

use super::super::payload::{discord, ntfy, slack, teams};
use super::super::*;
use super::signing::verify;
use super::{event, fast};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const SECRET: &[u8] = b"notify-secret-7c2e-0123456789";
const LINK: &str = "https://github.com/acme/shop/commit/0123456789abcdef0123456789abcdef01234567";

/// What the server got: path and query, headers, raw body.
struct Got {
    uri: String,
    headers: HeaderMap,
    raw: Vec<u8>,
    json: Value,
}

async fn record(
    State(tx): State<mpsc::UnboundedSender<Got>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let json = serde_json::from_slice(&body).expect("every format is JSON");
    let _ = tx.send(Got {
        uri: uri.to_string(),
        headers,
        raw: body.to_vec(),
        json,
    });
    StatusCode::OK
}

/// An event with everything, its message and commit summary far over every limit, in
/// characters of one to four bytes, and text that would be markup in each format.
fn huge_event() -> Event {
    let message =
        "health check failed: <!channel> @everyone [x](http://evil) *bold* é😀 ".repeat(2_000);
    Event {
        images_before: vec!["nginx:1.26".to_string()],
        commit_summary: Some(format!("Fix checkout {}", "ünïcode ✓ ".repeat(5_000))),
        commit_author: Some("Ann Example".to_string()),
        ..event(EventKind::RolledBack, &message)
    }
}

fn chars(v: &Value) -> usize {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .chars()
        .count()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

#[tokio::test]
async fn every_format_arrives_over_tls_in_its_providers_schema() {
    let pki = crate::http_client::tls_fixture::TestPki::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route("/", post(record))
        .route("/{*path}", post(record))
        .with_state(tx);
    let addr = pki.serve(app).await;
    let base = format!("https://localhost:{}", addr.port());
    let n = Notifier::start(NotifyConfig {
        urls: vec![
            format!("{base}/hooks/plain"),
            format!("json={base}/hooks/json"),
            format!("slack={base}/services/T000/B000/slack-tok"),
            format!("mattermost={base}/hooks/mm-tok"),
            format!("discord={base}/api/webhooks/1/discord-tok"),
            format!("teams={base}/workflows/w/triggers/manual/paths/invoke?sig=teams-tok"),
            format!("ntfy={base}/berth-alerts"),
        ],
        format: Format::Json,
        retry: fast(2),
        ca_file: Some(pki.ca_file.clone()),
        secret: Some(Secret::new(SECRET)),
        repository: Some("git@github.com:acme/shop.git".to_string()),
    })
    .unwrap();
    n.send(huge_event());
    assert!(n.flush(std::time::Duration::from_secs(20)).await);
    let mut got = BTreeMap::new();
    while let Ok(g) = rx.try_recv() {
        got.insert(g.uri.clone(), g);
    }
    assert_eq!(got.len(), 7, "{:?}", got.keys().collect::<Vec<_>>());

    check_json(&got["/hooks/plain"]);
    check_json(&got["/hooks/json"]);
    check_slack(&got["/services/T000/B000/slack-tok"].json);
    // Mattermost takes Slack's payload: the same body.
    assert_eq!(
        got["/hooks/mm-tok"].raw,
        got["/services/T000/B000/slack-tok"].raw
    );
    check_discord(&got["/api/webhooks/1/discord-tok"].json);
    let teams = &got["/workflows/w/triggers/manual/paths/invoke?sig=teams-tok"];
    check_teams(teams);
    check_ntfy(&got["/"].json);
    for g in got.values() {
        let body = String::from_utf8_lossy(&g.raw);
        assert!(!body.contains("notify-secret-7c2e"), "the secret in a body");
        assert!(!body.contains("slack-tok") && !body.contains("discord-tok"));
        assert_eq!(g.headers["content-type"], "application/json");
    }
}

/// berth's event, every field, signed in the headers.
fn check_json(g: &Got) {
    let e = &g.json;
    assert_eq!(e["kind"], "rolled-back");
    for key in [
        "project", "host", "service", "commit", "image", "message", "time",
    ] {
        assert!(e[key].is_string(), "{key} missing");
    }
    assert_eq!(e["commit"], SHA);
    assert_eq!(e["image"], "nginx:1.27");
    assert_eq!(e["images_before"], serde_json::json!(["nginx:1.26"]));
    assert_eq!(e["commit_author"], "Ann Example");
    assert!(text(&e["commit_summary"]).starts_with("Fix checkout ünïcode ✓"));
    assert_eq!(e["commit_url"], LINK);
    // The signature, recomputed as a receiver would, over the timestamp and the raw body.
    let timestamp = g.headers["x-berth-timestamp"].to_str().unwrap();
    let signature = g.headers["x-berth-signature-256"].to_str().unwrap();
    assert!(verify(SECRET, timestamp, &g.raw, signature), "{signature}");
    let age = super::super::sign::unix_now() as i64 - timestamp.parse::<i64>().unwrap();
    assert!((0..300).contains(&age), "a fresh timestamp: {age}");
    let mut tampered = g.raw.clone();
    tampered[2] ^= 1;
    assert!(!verify(SECRET, timestamp, &tampered, signature));
}

/// Slack: `text` required with blocks, at most 40,000 characters; at most 50 blocks;
/// header `plain_text` at most 150, section `mrkdwn` at most 3000.
fn check_slack(p: &Value) {
    let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["blocks", "text"]);
    assert!((1..=slack::TEXT_MAX).contains(&chars(&p["text"])));
    let blocks = p["blocks"].as_array().unwrap();
    assert!((1..=slack::BLOCKS_MAX).contains(&blocks.len()));
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert!((1..=slack::HEADER_MAX).contains(&chars(&blocks[0]["text"]["text"])));
    assert_eq!(text(&blocks[0]["text"]["text"]), "↩️ Rolled back: shop/web");
    assert_eq!(blocks[1]["type"], "section");
    assert_eq!(blocks[1]["text"]["type"], "mrkdwn");
    let section = text(&blocks[1]["text"]["text"]);
    assert!(
        section.chars().count() <= slack::SECTION_MAX,
        "{}",
        section.len()
    );
    assert!(section.ends_with('…'), "the message is cut");
    // One release in one message: before → after, the commit linked, its author.
    assert!(
        section.contains("*Image:* `nginx:1.26` → `nginx:1.27`"),
        "{section}"
    );
    assert!(section.contains(&format!("*Commit:* <{LINK}|0123456789ab> Fix checkout")));
    assert!(section.contains("(Ann Example)"));
    assert!(section.contains("*Host:* `host-1`"));
    // Nothing the message says becomes a mention or a link.
    assert!(section.contains("&lt;!channel&gt;"));
    assert!(!p.to_string().contains("<!channel>"));
    // Mattermost shows `text` alone: it holds the release too.
    let fallback = text(&p["text"]);
    assert!(fallback.starts_with(":leftwards_arrow_with_hook: *Rolled back*: shop/web on host-1\n"));
    assert!(fallback.contains("`nginx:1.26` → `nginx:1.27`"));
}

/// Discord: content at most 2000; an embed's title 256, description 4096, at most 25
/// fields (name 256 and value 1024, both required), footer 2048, all of them together
/// 6000; no mention parsed.
fn check_discord(p: &Value) {
    assert!((1..=discord::CONTENT_MAX).contains(&chars(&p["content"])));
    assert_eq!(p["allowed_mentions"]["parse"], serde_json::json!([]));
    let embeds = p["embeds"].as_array().unwrap();
    assert_eq!(embeds.len(), 1);
    let e = &embeds[0];
    assert!((1..=discord::TITLE_MAX).contains(&chars(&e["title"])));
    assert!((1..=discord::DESCRIPTION_MAX).contains(&chars(&e["description"])));
    assert!(text(&e["description"]).ends_with('…'));
    let fields = e["fields"].as_array().unwrap();
    assert!(fields.len() <= discord::FIELDS_MAX);
    let mut total = chars(&e["title"]) + chars(&e["description"]) + chars(&e["footer"]["text"]);
    for f in fields {
        assert!(
            (1..=discord::FIELD_NAME_MAX).contains(&chars(&f["name"])),
            "{f}"
        );
        assert!(
            (1..=discord::FIELD_VALUE_MAX).contains(&chars(&f["value"])),
            "{f}"
        );
        total += chars(&f["name"]) + chars(&f["value"]);
    }
    assert!(chars(&e["footer"]["text"]) <= discord::FOOTER_MAX);
    assert!(total <= discord::EMBED_TOTAL_MAX, "{total}");
    assert_eq!(e["url"], LINK);
    assert_eq!(e["timestamp"], "2025-01-02T03:04:05Z");
    let field = |name: &str| {
        fields
            .iter()
            .find(|f| f["name"] == name)
            .map(|f| text(&f["value"]).to_string())
            .unwrap_or_else(|| panic!("no {name} field"))
    };
    assert_eq!(field("Image"), "`nginx:1.26` → `nginx:1.27`");
    let commit = field("Commit");
    assert!(
        commit.starts_with(&format!("[`0123456789ab`]({LINK}) Fix checkout")),
        "{commit}"
    );
    assert!(
        commit.ends_with('…') || commit.contains("— Ann Example"),
        "{commit}"
    );
    assert_eq!(field("Host"), "`host-1`");
    // Markdown in the message shows as written.
    assert!(text(&e["description"]).contains("\\[x\\](http://evil) \\*bold\\*"));
}

/// Teams: a `message` with one Adaptive Card attachment; the card's `type` and
/// `version` required, each element's required fields present; about 28 KB at most.
fn check_teams(g: &Got) {
    assert!(
        g.raw.len() <= teams::MESSAGE_MAX_BYTES,
        "{} bytes",
        g.raw.len()
    );
    assert!(g.raw.len() <= 28 * 1024);
    let p = &g.json;
    assert_eq!(p["type"], "message");
    let attachments = p["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1);
    assert_eq!(
        attachments[0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachments[0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    let body = card["body"].as_array().unwrap();
    assert!(!body.is_empty());
    let mut facts = BTreeMap::new();
    let mut runs = Vec::new();
    for element in body {
        match text(&element["type"]) {
            "TextBlock" => assert!(!text(&element["text"]).is_empty()),
            "FactSet" => {
                for f in element["facts"].as_array().unwrap() {
                    facts.insert(text(&f["title"]).to_string(), text(&f["value"]).to_string());
                }
            }
            "RichTextBlock" => {
                for run in element["inlines"].as_array().unwrap() {
                    assert_eq!(run["type"], "TextRun");
                    runs.push(text(&run["text"]).to_string());
                }
            }
            other => panic!("unexpected element {other}"),
        }
    }
    assert_eq!(text(&body[0]["text"]), "↩️ Rolled back: shop/web");
    assert_eq!(facts["Image"], "nginx:1.26 → nginx:1.27");
    assert_eq!(facts["Commit"], "0123456789ab");
    assert_eq!(facts["Host"], "host-1");
    assert!(runs
        .iter()
        .any(|r| r.starts_with("Fix checkout") && r.ends_with('…')));
    assert!(runs.iter().any(|r| r == " — Ann Example"));
    assert!(runs
        .iter()
        .any(|r| r.starts_with("health check failed") && r.ends_with('…')));
    let actions = card["actions"].as_array().unwrap();
    assert_eq!(actions[0]["type"], "Action.OpenUrl");
    assert_eq!(actions[0]["url"], LINK);
}

/// ntfy: JSON to the root with `topic` required; `message` at most 4096 bytes; tags a
/// list of strings; priority 1 to 5; `click` a URL.
fn check_ntfy(p: &Value) {
    assert_eq!(p["topic"], "berth-alerts");
    let message = text(&p["message"]);
    assert!(
        message.len() <= ntfy::MESSAGE_MAX_BYTES,
        "{} bytes",
        message.len()
    );
    assert!(message.ends_with('…'));
    assert!(message.starts_with("nginx:1.26 → nginx:1.27\ncommit 0123456789ab Fix checkout"));
    assert!((1..=ntfy::TITLE_MAX).contains(&chars(&p["title"])));
    assert_eq!(p["title"], "Rolled back: shop/web on host-1");
    assert_eq!(p["tags"], serde_json::json!(["leftwards_arrow_with_hook"]));
    assert!((1..=5).contains(&p["priority"].as_u64().unwrap()));
    assert_eq!(p["click"], LINK);
}

#[test]
fn cuts_never_split_a_character_and_stay_within_the_limit() {
    // A message of four-byte characters, cut at every byte budget near the limit.
    for extra in 0..4 {
        let e = Event {
            message: "😀".repeat(2_000 + extra),
            ..event(EventKind::Failed, "")
        };
        let p = payload(&e, Format::Ntfy, "t");
        let m = text(&p["message"]);
        assert!(
            m.len() <= ntfy::MESSAGE_MAX_BYTES && m.ends_with('…'),
            "{}",
            m.len()
        );
    }
    // Slack's escapes are never cut in half.
    let e = event(EventKind::Failed, &"&".repeat(5_000));
    let section = payload(&e, Format::Slack, "")["blocks"][1]["text"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(section.chars().count() <= slack::SECTION_MAX);
    let quoted = section.rsplit_once("> ").unwrap().1;
    assert!(
        quoted
            .trim_end_matches('…')
            .split("&amp;")
            .all(str::is_empty),
        "{quoted}"
    );
}

#[test]
fn releases_name_before_and_after() {
    let first = Event {
        images_before: vec![],
        ..event(EventKind::Deployed, "")
    };
    let p = payload(&first, Format::Ntfy, "t");
    assert!(text(&p["message"]).starts_with("(none) → nginx:1.27"));
    let same = Event {
        images_before: vec!["nginx:1.27".into()],
        ..event(EventKind::Deployed, "")
    };
    let p = payload(&same, Format::Ntfy, "t");
    assert!(text(&p["message"]).starts_with("nginx:1.27 (unchanged)"));
    let mixed = Event {
        images_before: vec!["nginx:1.25".into(), "nginx:1.26".into()],
        ..event(EventKind::Deployed, "")
    };
    let p = payload(&mixed, Format::Discord, "");
    let image = p["embeds"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Image")
        .unwrap()["value"]
        .clone();
    assert_eq!(image, "`nginx:1.25`, `nginx:1.26` → `nginx:1.27`");
    // An invalid commit names no service and no image: no Image line anywhere.
    let invalid = Event {
        service: None,
        image: None,
        ..event(EventKind::InvalidCommit, "commit 0123 is invalid")
    };
    for format in Format::ALL {
        let body = payload(&invalid, format, "t").to_string();
        assert!(
            !body.contains("Image") && !body.contains('→'),
            "{format}: {body}"
        );
    }
}
