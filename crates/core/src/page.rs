//! Cursor pagination: a page size checked at the edge and opaque cursors (base64url of the sort
//! key of the last item returned), so pages stay stable while rows are added.

use base64::Engine as _;

use crate::Error;

/// Page size when the caller asks for 0.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: u32 = 100;

/// A checked page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// 1..=100.
    pub size: u32,
    /// The decoded cursor: the sort key of the last item of the previous page.
    pub after: Option<String>,
}

impl Page {
    /// Checks `page_size` (0 → 20, at most 100) and decodes `page_token`.
    ///
    /// Errors: `InvalidArgument` naming `page_size` or `page_token`.
    pub fn parse(page_size: u32, page_token: &str) -> Result<Page, Error> {
        if page_size > MAX_PAGE_SIZE {
            return Err(Error::invalid(
                "page_size",
                format!("must be at most {MAX_PAGE_SIZE}"),
            ));
        }
        let size = if page_size == 0 {
            DEFAULT_PAGE_SIZE
        } else {
            page_size
        };
        let after = if page_token.is_empty() {
            None
        } else {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(page_token)
                .map_err(|_| bad_token())?;
            Some(String::from_utf8(bytes).map_err(|_| bad_token())?)
        };
        Ok(Page { size, after })
    }

    /// Rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.size) + 1
    }
}

fn bad_token() -> Error {
    Error::invalid(
        "page_token",
        "is not a token this service returned; pass next_page_token unchanged",
    )
}

/// Encodes a sort key as a page token.
pub fn encode_cursor(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// Cuts `rows` (fetched with [`Page::fetch`]) to the page and returns the next token, built from
/// the last kept row by `key`; empty when this is the last page.
pub fn finish<T>(page: &Page, mut rows: Vec<T>, key: impl Fn(&T) -> String) -> (Vec<T>, String) {
    if rows.len() > page.size as usize {
        rows.truncate(page.size as usize);
        let next = rows
            .last()
            .map(|r| encode_cursor(&key(r)))
            .unwrap_or_default();
        (rows, next)
    } else {
        (rows, String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_tokens_are_checked() {
        assert_eq!(Page::parse(0, "").unwrap().size, DEFAULT_PAGE_SIZE);
        assert_eq!(
            Page::parse(101, "").unwrap_err().field.as_deref(),
            Some("page_size")
        );
        assert_eq!(
            Page::parse(10, "!!").unwrap_err().field.as_deref(),
            Some("page_token")
        );
        let token = encode_cursor("3:abc");
        assert_eq!(
            Page::parse(10, &token).unwrap().after.as_deref(),
            Some("3:abc")
        );
    }

    #[test]
    fn finish_cuts_the_extra_row() {
        let page = Page::parse(2, "").unwrap();
        let (rows, next) = finish(&page, vec![1, 2, 3], |r| r.to_string());
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(Page::parse(2, &next).unwrap().after.as_deref(), Some("2"));
        let (rows, next) = finish(&page, vec![1, 2], |r| r.to_string());
        assert_eq!(rows.len(), 2);
        assert!(next.is_empty());
    }
}
