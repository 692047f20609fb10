//! Reading `multipart/form-data` request bodies in fakes and tests (text fields only, as the
//! vendors' documented forms use them).

use std::collections::BTreeMap;

/// The text fields of a `multipart/form-data` request, by name. Empty when the request is not
/// multipart.
pub fn fields(request: &wiremock::Request) -> BTreeMap<String, String> {
    let Some(boundary) = request
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("multipart/form-data"))
        .and_then(|v| v.split("boundary=").nth(1))
        .map(|b| b.trim_matches('"').to_owned())
    else {
        return BTreeMap::new();
    };
    let body = String::from_utf8_lossy(&request.body);
    let mut fields = BTreeMap::new();
    for part in body.split(&format!("--{boundary}")) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let Some(name) = head
            .split("name=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        else {
            continue;
        };
        fields.insert(name.to_owned(), value.trim_end_matches("\r\n").to_owned());
    }
    fields
}

/// Every part of a `multipart/form-data` request as raw bytes, by name (files included), for
/// uploads. Empty when the request is not multipart.
pub fn parts(request: &wiremock::Request) -> BTreeMap<String, Vec<u8>> {
    let Some(boundary) = request
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("multipart/form-data"))
        .and_then(|v| v.split("boundary=").nth(1))
        .map(|b| b.trim_matches('"').to_owned())
    else {
        return BTreeMap::new();
    };
    let delimiter = format!("--{boundary}").into_bytes();
    let body = &request.body;
    let mut starts = Vec::new();
    let mut i = 0;
    while i + delimiter.len() <= body.len() {
        if body[i..].starts_with(&delimiter) {
            starts.push(i);
            i += delimiter.len();
        } else {
            i += 1;
        }
    }
    let mut parts = BTreeMap::new();
    for pair in starts.windows(2) {
        let part = &body[pair[0] + delimiter.len()..pair[1]];
        let Some(split) = part.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..split]);
        let Some(name) = head
            .split("name=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        else {
            continue;
        };
        let mut value = &part[split + 4..];
        if value.ends_with(b"\r\n") {
            value = &value[..value.len() - 2];
        }
        parts.insert(name.to_owned(), value.to_vec());
    }
    parts
}
