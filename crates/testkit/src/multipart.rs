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
