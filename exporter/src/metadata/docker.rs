//! Docker Engine API: `GET /containers/{id}/json` over the daemon's unix
//! socket (Podman's Docker-compatible API answers the same request).
//!
//! Used fields: `Name` (`/web` -> `container.name` `web`), `Config.Image`
//! (the reference the container was created from -> `container.image.name`
//! and `container.image.tags`), `Image` (`sha256:...` ->
//! `container.image.id`), and the `io.kubernetes.pod.name` /
//! `io.kubernetes.pod.namespace` labels cri-dockerd sets.

use super::http::{self, Target};
use super::{split_image, ContainerMeta, LookupError};
use std::path::Path;

/// Inspect answers are small; refuse anything absurd.
const MAX_BODY: usize = 4 << 20;

/// Ask the daemon at `socket` about container `id`.
pub async fn inspect(socket: &Path, id: &str) -> Result<ContainerMeta, LookupError> {
    if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(LookupError::NotFound);
    }
    let resp = http::get(&Target::Unix(socket.to_owned()), &format!("/containers/{id}/json"), None).await?;
    match resp.status().as_u16() {
        200 => {}
        404 => return Err(LookupError::NotFound),
        other => return Err(LookupError::Http(other)),
    }
    let body = http::body(resp, MAX_BODY).await?;
    parse_inspect(&body)
}

/// Parse an inspect answer.
pub fn parse_inspect(body: &[u8]) -> Result<ContainerMeta, LookupError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| LookupError::Decode(e.to_string()))?;
    let s = |v: &serde_json::Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let mut m = ContainerMeta { name: s(&v["Name"]).map(|n| n.trim_start_matches('/').to_owned()), ..ContainerMeta::default() };
    if let Some(reference) = s(&v["Config"]["Image"]) {
        let (name, tag) = split_image(&reference);
        m.image_name = Some(name);
        m.image_tags = tag.into_iter().collect();
    }
    m.image_id = s(&v["Image"]);
    let labels = &v["Config"]["Labels"];
    m.pod_name = s(&labels["io.kubernetes.pod.name"]);
    m.pod_namespace = s(&labels["io.kubernetes.pod.namespace"]);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_fields_it_uses() {
        let body = br#"{"Id":"x","Name":"/web","Image":"sha256:abc","Config":{"Image":"nginx:1.25","Labels":{"a":"b"}}}"#;
        let m = parse_inspect(body).expect("parses");
        assert_eq!(m.name.as_deref(), Some("web"));
        assert_eq!(m.image_name.as_deref(), Some("nginx"));
        assert_eq!(m.image_tags, ["1.25"]);
        assert_eq!(m.image_id.as_deref(), Some("sha256:abc"));
        assert_eq!(m.pod_name, None);
        assert!(matches!(parse_inspect(b"<html>"), Err(LookupError::Decode(_))));
    }
}
