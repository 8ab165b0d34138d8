//! One request with the caller's method and headers, answered with its status, headers
//! and (bounded) body: for protocols that speak in headers, as a registry's token
//! challenge does.

use reqwest::header::HeaderMap;
use reqwest::Method;

use super::{classify, HttpClient, Reply, RequestError};

/// An answer with its headers.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    /// The HTTP status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, at most `max` bytes of it, lossily decoded (empty for `HEAD`).
    pub body: String,
}

impl HttpClient {
    /// `method url` with `headers`, within the deadline; at most `max` body bytes read.
    pub(crate) async fn exchange(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        max: usize,
    ) -> Result<Exchange, RequestError> {
        let request = self.inner.request(method, url).headers(headers);
        self.within(async {
            let response = request.send().await.map_err(classify)?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = Reply { response }.text(max).await?;
            Ok(Exchange {
                status,
                headers,
                body,
            })
        })
        .await
    }
}
