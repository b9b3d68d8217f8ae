//! Transaction names from request paths: ids collapsed so `/orders/17` and
//! `/orders/18` are one endpoint.

/// Replaces path segments that look like ids: numbers → `{id}`, UUIDs → `{uuid}`, long
/// hex strings → `{hex}`, long tokens mixing letters and digits → `{token}`.
///
/// ```
/// assert_eq!(tern::naming::collapse_ids("/orders/17/items"), "/orders/{id}/items");
/// ```
pub fn collapse_ids(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    collapse_ids_into(path, &mut out);
    out
}

/// [`collapse_ids`] into `out` (replaced; its allocation reused).
pub fn collapse_ids_into(path: &str, out: &mut String) {
    out.clear();
    if path.is_empty() {
        out.push('/');
        return;
    }
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(classify(seg).unwrap_or(seg));
    }
}

fn classify(seg: &str) -> Option<&'static str> {
    if seg.is_empty() {
        return None;
    }
    let b = seg.as_bytes();
    if b.iter().all(u8::is_ascii_digit) {
        return Some("{id}");
    }
    if b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
    {
        return Some("{uuid}");
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    if b.len() >= 16 && b.iter().all(u8::is_ascii_hexdigit) && digits > 0 {
        return Some("{hex}");
    }
    if b.len() >= 20
        && digits >= 3
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
    {
        return Some("{token}");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::collapse_ids;

    #[test]
    fn ids_in_paths_are_collapsed_and_words_are_kept() {
        assert_eq!(collapse_ids("/orders/17"), "/orders/{id}");
        assert_eq!(
            collapse_ids("/u/123e4567-e89b-12d3-a456-426614174000/x"),
            "/u/{uuid}/x"
        );
        assert_eq!(
            collapse_ids("/blob/9f86d081884c7d659a2feaa0c55ad015"),
            "/blob/{hex}"
        );
        assert_eq!(collapse_ids("/t/abC9dEf8gHi7jKl6mNo5p"), "/t/{token}");
        assert_eq!(collapse_ids("/api/v2/users"), "/api/v2/users");
        assert_eq!(collapse_ids("/index.php"), "/index.php");
        assert_eq!(collapse_ids(""), "/");
    }
}
