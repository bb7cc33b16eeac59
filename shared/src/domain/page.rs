//! Keyset pagination, once for every list: what a caller asks for, and the page it gets back with
//! an opaque cursor naming the last item shown.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

use crate::domain::validate::Invalid;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: u32 = 200;

/// The sort key of an item: a position (creation time, sequence number) and the id that breaks ties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyset {
    pub position: i64,
    pub id: String,
}

/// A validated `limit` and `cursor`.
#[derive(Clone, Debug)]
pub struct PageRequest {
    pub limit: i64,
    /// Start after this item; `None` for the first page.
    pub after: Option<Keyset>,
}

impl PageRequest {
    /// `limit` defaults to 50 and is capped at 200; `cursor` must be one this API returned.
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, Invalid> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(n @ 1..=MAX_LIMIT) => n.into(),
            Some(_) => {
                return Err(Invalid::new(
                    "limit",
                    format!("must be from 1 to {MAX_LIMIT}"),
                ))
            }
        };
        let after = cursor.map(decode_cursor).transpose()?;
        Ok(PageRequest { limit, after })
    }

    /// Rows a keyset query fetches: one more than shown tells whether there is a next page.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }
}

/// One page of a cursor-paginated list: `{"data": [...], "next_cursor": ...}`.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// The cursor for the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Turns the `limit + 1` rows of a keyset query into a page: the extra row only tells that
    /// there is a next one, whose cursor is the key of the last row shown.
    pub fn from_rows(mut data: Vec<T>, request: &PageRequest, key: impl Fn(&T) -> Keyset) -> Self {
        let limit = usize::try_from(request.limit).unwrap_or(usize::MAX);
        let next_cursor = if data.len() > limit {
            data.truncate(limit);
            data.last().map(|last| encode_cursor(&key(last)))
        } else {
            None
        };
        Page { data, next_cursor }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            data: self.data.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

fn encode_cursor(key: &Keyset) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", key.position, key.id))
}

fn decode_cursor(cursor: &str) -> Result<Keyset, Invalid> {
    let invalid = || Invalid::new("cursor", "not a cursor this API returned");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let (position, id) = text.split_once(':').ok_or_else(invalid)?;
    Ok(Keyset {
        position: position.parse().map_err(|_| invalid())?,
        id: id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_names_the_last_item_shown() {
        let request = PageRequest::parse(Some(2), None).unwrap();
        let page = Page::from_rows(vec![1, 2, 3], &request, |n| Keyset {
            position: *n,
            id: format!("id{n}"),
        });
        assert_eq!(page.data, vec![1, 2]);
        let next = PageRequest::parse(Some(2), page.next_cursor.as_deref()).unwrap();
        assert_eq!(
            next.after,
            Some(Keyset {
                position: 2,
                id: "id2".into()
            })
        );
        let last = Page::from_rows(vec![3], &next, |n| Keyset {
            position: *n,
            id: String::new(),
        });
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn limits_and_cursors_are_checked() {
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, 50);
        assert_eq!(
            PageRequest::parse(Some(0), None).unwrap_err().field,
            "limit"
        );
        assert_eq!(
            PageRequest::parse(Some(201), None).unwrap_err().field,
            "limit"
        );
        assert_eq!(
            PageRequest::parse(None, Some("!!")).unwrap_err().field,
            "cursor"
        );
    }
}
