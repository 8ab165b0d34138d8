//! The token challenge answered end to end over real HTTP: a loopback server speaking
//! the registry's side of it (Docker's token flow; the loopback `docker-registry` of the
//! integration tests serves basic auth only).

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, head};
use axum::Router;

use crate::bump::registry::exists;
use crate::model::ImageRef;
use crate::runtime::RegistryAuth;

const TOKEN: &str = "t0ken-for-pull";

async fn serve(seen: Arc<Mutex<Vec<String>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let realm = format!("http://{addr}/token");
    let manifests = {
        let seen = seen.clone();
        move |axum::extract::Path((repo, name, reference)): axum::extract::Path<(
            String,
            String,
            String,
        )>,
              headers: HeaderMap| {
            let seen = seen.clone();
            let realm = realm.clone();
            async move {
                let accept = headers
                    .get("accept")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                seen.lock().unwrap().push(format!("accept {accept}"));
                let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
                    == Some(&format!("Bearer {TOKEN}"));
                if !authorized {
                    let challenge = format!(
                        "Bearer realm=\"{realm}\",service=\"test-registry\",scope=\"repository:{repo}/{name}:pull\""
                    );
                    return (StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)])
                        .into_response_parts();
                }
                let status = if reference == "v1" {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                };
                (status, [("www-authenticate", String::new())]).into_response_parts()
            }
        }
    };
    let token = move |axum::extract::RawQuery(q): axum::extract::RawQuery, headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_string();
            seen.lock()
                .unwrap()
                .push(format!("token {} {auth}", q.unwrap_or_default()));
            // `user:secret`
            if auth != "Basic dXNlcjpzZWNyZXQ=" {
                return (StatusCode::UNAUTHORIZED, String::new());
            }
            (StatusCode::OK, format!("{{\"token\":\"{TOKEN}\"}}"))
        }
    };
    let app = Router::new()
        .route("/v2/{repo}/{name}/manifests/{reference}", head(manifests))
        .route("/token", get(token));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

trait Parts {
    fn into_response_parts(self) -> axum::response::Response;
}

impl Parts for (StatusCode, [(&'static str, String); 1]) {
    fn into_response_parts(self) -> axum::response::Response {
        use axum::response::IntoResponse;
        let (status, [(name, value)]) = self;
        if value.is_empty() {
            status.into_response()
        } else {
            (status, [(name, value)]).into_response()
        }
    }
}

fn auth(password: &str) -> RegistryAuth {
    RegistryAuth {
        username: "user".into(),
        password: password.into(),
        server: "x".into(),
        identity_token: None,
    }
}

#[tokio::test]
async fn a_bearer_challenge_is_answered_with_a_token_fetched_with_the_credentials() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let addr = serve(seen.clone()).await;
    let there = ImageRef::parse(&format!("{addr}/acme/api:v1")).unwrap();
    let missing = ImageRef::parse(&format!("{addr}/acme/api:v9")).unwrap();
    assert!(exists(&there, &[], Some(&auth("secret"))).await.unwrap());
    assert!(!exists(&missing, &[], Some(&auth("secret"))).await.unwrap());
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|s| s.starts_with(
            "token service=test-registry&scope=repository%3Aacme%2Fapi%3Apull Basic "
        )),
        "{seen:?}"
    );
    let accept = seen.iter().find(|s| s.starts_with("accept ")).unwrap();
    for media in [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ] {
        assert!(accept.contains(media), "{accept}");
    }
}

#[tokio::test]
async fn refused_credentials_are_said_without_the_password() {
    let addr = serve(Arc::new(Mutex::new(Vec::new()))).await;
    let image = ImageRef::parse(&format!("{addr}/acme/api:v1")).unwrap();
    let err = exists(&image, &[], Some(&auth("wrong-password")))
        .await
        .unwrap_err();
    assert!(
        err.contains("token service answered 401") && err.contains("docker login"),
        "{err}"
    );
    assert!(!err.contains("wrong-password"), "{err}");
}
