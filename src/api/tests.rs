use super::*;

fn authorize(
    transport: Transport,
    secret: Option<&[u8]>,
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), Refusal> {
    authorize_with(transport, secret, |s| signature_ok(s, body, signature))
}

#[test]
fn state_changes_need_the_hmac_over_tcp_and_nothing_over_the_socket() {
    let secret = b"It's a Secret to Everybody";
    let body = b"Hello, World!";
    let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let tcp = Transport::Tcp;
    assert_eq!(authorize(tcp, None, body, None), Err(Refusal::NoSecret));
    assert_eq!(
        authorize(tcp, None, body, Some(good)),
        Err(Refusal::NoSecret)
    );
    assert_eq!(
        authorize(tcp, Some(secret), body, None),
        Err(Refusal::BadSignature)
    );
    assert_eq!(
        authorize(tcp, Some(secret), b"other body", Some(good)),
        Err(Refusal::BadSignature)
    );
    assert_eq!(authorize(tcp, Some(secret), body, Some(good)), Ok(()));
    let unix = Transport::ControlSocket;
    assert_eq!(authorize(unix, None, body, None), Ok(()));
    assert_eq!(
        authorize(unix, Some(secret), body, Some("sha256=00")),
        Ok(())
    );
}

mod webhook {
    //! `POST /hooks/git` served on loopback, one host's scheme at a time: the answer
    //! comes only after the handler decided, so a trigger either was sent before it or
    //! never is.

    use std::net::SocketAddr;
    use std::sync::Arc;

    use hmac::{Hmac, Mac};
    use sha2::Sha256;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;

    use super::super::*;

    const SECRET: &str = "router-hook-secret-93b1";

    struct Listener {
        addr: SocketAddr,
        rx: mpsc::UnboundedReceiver<Trigger>,
        _dir: tempfile::TempDir,
    }

    async fn listen() -> Listener {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let status = crate::status::AgentStatus {
            host: crate::plan::Host::default(),
            repo: "https://git.example/o/r.git".into(),
            branch: "main".into(),
            applied_commit: None,
            head: None,
            last_error: None,
            last_reconcile: None,
            last_reconcile_ms: None,
            fetch_failures: 0,
            services: Default::default(),
            failed_targets: Vec::new(),
            paused: false,
            coordination: "local".into(),
            degraded: None,
            engine_down: None,
            started_migrations: Vec::new(),
            rollout: Default::default(),
            last_reconcile_at: None,
            stale_after: std::time::Duration::from_secs(3600),
        };
        let state = ApiState {
            status: Arc::new(tokio::sync::RwLock::new(status)),
            triggers: tx,
            webhook_secret: Some(Arc::new(SECRET.as_bytes().to_vec())),
            metrics: Arc::new(metrics::Metrics::new(None)),
            transport: Transport::Tcp,
            control_socket: dir.path().join("control.sock"),
            branch: "main".into(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        Listener {
            addr,
            rx,
            _dir: dir,
        }
    }

    impl Listener {
        /// POSTs to the webhook; the status line's code and the body.
        async fn post(&self, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
            let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
            let mut head = format!(
                "POST /hooks/git HTTP/1.0\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            s.write_all(head.as_bytes()).await.unwrap();
            s.write_all(body).await.unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).await.unwrap();
            let code = answer[9..12].parse().unwrap();
            let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
            (code, body)
        }

        /// Whether exactly one webhook trigger was sent, and nothing else.
        fn took_one(&mut self) -> bool {
            let one = self.rx.try_recv() == Ok(Trigger::Webhook);
            one && self.rx.try_recv().is_err()
        }

        fn took_none(&mut self) -> bool {
            self.rx.try_recv().is_err()
        }
    }

    fn hmac_hex(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    /// One host's scheme: how it names a push, how it proves the secret, and its
    /// payload for a push to `branch`.
    struct Scheme {
        name: &'static str,
        event: (&'static str, &'static str),
        proof: fn(secret: &str, body: &[u8]) -> (&'static str, String),
        payload: fn(branch: &str) -> String,
    }

    fn ref_payload(branch: &str) -> String {
        format!(r#"{{"ref":"refs/heads/{branch}","after":"1f2e","commits":[]}}"#)
    }

    fn schemes() -> Vec<Scheme> {
        vec![
            Scheme {
                name: "github",
                event: ("X-GitHub-Event", "push"),
                proof: |s, b| ("X-Hub-Signature-256", format!("sha256={}", hmac_hex(s, b))),
                payload: ref_payload,
            },
            Scheme {
                name: "gitlab",
                event: ("X-Gitlab-Event", "Push Hook"),
                proof: |s, _| ("X-Gitlab-Token", s.to_string()),
                payload: |b| {
                    format!(
                        r#"{{"object_kind":"push","ref":"refs/heads/{b}","checkout_sha":"1f2e"}}"#
                    )
                },
            },
            Scheme {
                name: "gitea",
                event: ("X-Gitea-Event", "push"),
                proof: |s, b| ("X-Gitea-Signature", hmac_hex(s, b)),
                payload: ref_payload,
            },
            Scheme {
                name: "forgejo",
                event: ("X-Forgejo-Event", "push"),
                proof: |s, b| ("X-Forgejo-Signature", hmac_hex(s, b)),
                payload: ref_payload,
            },
            Scheme {
                name: "bitbucket-cloud",
                event: ("X-Event-Key", "repo:push"),
                proof: |s, b| ("X-Hub-Signature", format!("sha256={}", hmac_hex(s, b))),
                payload: |b| {
                    format!(
                        r#"{{"push":{{"changes":[{{"new":{{"type":"branch","name":"{b}","target":{{"hash":"1f2e"}}}},"old":{{"type":"branch","name":"{b}"}}}}]}}}}"#
                    )
                },
            },
            Scheme {
                name: "bitbucket-server",
                event: ("X-Event-Key", "repo:refs_changed"),
                proof: |s, b| ("X-Hub-Signature", format!("sha256={}", hmac_hex(s, b))),
                payload: |b| {
                    format!(
                        r#"{{"eventKey":"repo:refs_changed","changes":[{{"ref":{{"id":"refs/heads/{b}","displayId":"{b}","type":"BRANCH"}},"refId":"refs/heads/{b}","toHash":"1f2e","type":"UPDATE"}}]}}"#
                    )
                },
            },
        ]
    }

    #[tokio::test]
    async fn every_host_good_bad_and_missing_proof_another_branch_and_the_watched_one() {
        for scheme in schemes() {
            let mut l = listen().await;
            let name = scheme.name;
            let event = || (scheme.event.0, scheme.event.1.to_string());
            let main = (scheme.payload)("main").into_bytes();

            // Missing proof: 401, nothing happens.
            let (code, body) = l.post(&[event()], &main).await;
            assert_eq!(code, 401, "{name}: {body}");
            assert!(l.took_none(), "{name}");
            // A proof made with another secret: 401, and the answer quotes no secret.
            let (header, forged) = (scheme.proof)("another-secret", &main);
            let (code, body) = l.post(&[event(), (header, forged)], &main).await;
            assert_eq!(code, 401, "{name}: {body}");
            assert!(!body.contains(SECRET), "{name}: {body}");
            assert!(l.took_none(), "{name}");
            // The proof of another body (no effect for GitLab's token, which signs nothing).
            if name != "gitlab" {
                let (header, other) = (scheme.proof)(SECRET, b"{}");
                let (code, _) = l.post(&[event(), (header, other)], &main).await;
                assert_eq!(code, 401, "{name}");
                assert!(l.took_none(), "{name}");
            }
            // A signed push to another branch: 202, ignored.
            let feature = (scheme.payload)("feature").into_bytes();
            let (header, proof) = (scheme.proof)(SECRET, &feature);
            let (code, body) = l.post(&[event(), (header, proof)], &feature).await;
            assert_eq!(code, 202, "{name}: {body}");
            assert!(body.starts_with("ignored"), "{name}: {body}");
            assert!(l.took_none(), "{name}");
            // A signed push to the watched branch: 202, one reconcile.
            let (header, proof) = (scheme.proof)(SECRET, &main);
            let (code, body) = l.post(&[event(), (header, proof)], &main).await;
            assert_eq!((code, body.as_str()), (202, "fetching\n"), "{name}");
            assert!(l.took_one(), "{name}");
        }
    }

    #[tokio::test]
    async fn pings_fetch_as_before_and_a_signed_push_that_is_not_json_is_refused() {
        let mut l = listen().await;
        let ping = br#"{"zen":"Keep it logically awesome."}"#;
        let sig = format!("sha256={}", hmac_hex(SECRET, ping));
        let (code, _) = l
            .post(
                &[
                    ("X-GitHub-Event", "ping".into()),
                    ("X-Hub-Signature-256", sig),
                ],
                ping,
            )
            .await;
        assert_eq!(code, 202);
        assert!(l.took_one());
        let ping = b"{}";
        let sig = format!("sha256={}", hmac_hex(SECRET, ping));
        let (code, _) = l
            .post(
                &[
                    ("X-Event-Key", "diagnostics:ping".into()),
                    ("X-Hub-Signature", sig),
                ],
                ping,
            )
            .await;
        assert_eq!(code, 202);
        assert!(l.took_one());
        let (code, body) = l
            .post(
                &[
                    ("X-Gitlab-Event", "Push Hook".into()),
                    ("X-Gitlab-Token", SECRET.into()),
                ],
                b"<html>",
            )
            .await;
        assert_eq!(code, 400, "{body}");
        assert!(body.contains("gitlab"), "{body}");
        assert!(l.took_none());
    }
}
