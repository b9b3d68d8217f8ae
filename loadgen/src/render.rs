//! Fills the `{placeholder}`s of path and SQL templates with varying literals, writing
//! into a reused `String` (no allocation once its capacity has grown).

use std::fmt::Write;

use rand::rngs::SmallRng;
use rand::Rng;

const WORDS: &[&str] = &[
    "shoes",
    "jacket",
    "lamp",
    "coffee",
    "desk",
    "kettle",
    "backpack",
    "headphones",
    "socks",
    "mug",
    "charger",
    "blanket",
    "bike",
    "tent",
    "watch",
    "camera",
];
const LOCALES: &[&str] = &["'en-US'", "'de-DE'", "'fr-FR'", "'ko-KR'", "'pt-BR'"];

/// Appends `template` to `out` with every known `{name}` replaced by a random value.
/// Unknown placeholders are copied as they are.
pub(crate) fn render(template: &str, rng: &mut SmallRng, out: &mut String) {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return;
        };
        placeholder(&after[..close], rng, out, &rest[open..open + close + 2]);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
}

fn placeholder(name: &str, rng: &mut SmallRng, out: &mut String, raw: &str) {
    // `write!` into a String cannot fail.
    match name {
        "id" => {
            let _ = write!(out, "{}", id(rng));
        }
        "n" => {
            let _ = write!(out, "{}", rng.random_range(1..=20u32));
        }
        "uuid" => uuid(rng, out),
        "sku" => {
            out.push_str("SKU-");
            let v: u32 = rng.random_range(0..0x10_0000);
            let _ = write!(out, "{v:05X}");
        }
        "word" => out.push_str(WORDS[rng.random_range(0..WORDS.len())]),
        "str" => {
            // Mostly a locale (templates look these up), else a token-like string.
            if rng.random_bool(0.5) {
                out.push_str(LOCALES[rng.random_range(0..LOCALES.len())]);
            } else {
                let _ = write!(
                    out,
                    "'{}_{:x}'",
                    WORDS[rng.random_range(0..WORDS.len())],
                    rng.random::<u32>()
                );
            }
        }
        "email" => {
            let _ = write!(out, "'user{}@example.com'", id(rng));
        }
        "dec" => {
            let cents: u32 = rng.random_range(99..50_000);
            let _ = write!(out, "{}.{:02}", cents / 100, cents % 100);
        }
        "ids" => {
            let n = in_list_len(rng);
            out.push('(');
            for i in 0..n {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{}", id(rng));
            }
            out.push(')');
        }
        _ => out.push_str(raw),
    }
}

/// Skewed towards small ids so that some repeat (hot rows), like real traffic.
fn id(rng: &mut SmallRng) -> u32 {
    if rng.random_bool(0.3) {
        rng.random_range(1..100)
    } else {
        rng.random_range(100..100_000)
    }
}

/// IN lists of 1–12 elements, short ones most often.
fn in_list_len(rng: &mut SmallRng) -> usize {
    let a = rng.random_range(1..=12usize);
    let b = rng.random_range(1..=12usize);
    a.min(b)
}

/// A version-4 UUID in its usual text form.
pub(crate) fn uuid(rng: &mut SmallRng, out: &mut String) {
    let v: u128 = rng.random::<u128>() & !(0xf000 << 64) & !(0xc000 << 48);
    let v = v | (0x4000 << 64) | (0x8000 << 48);
    let _ = write!(
        out,
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (v >> 96) as u32,
        (v >> 80) as u16,
        (v >> 64) as u16,
        (v >> 48) as u16,
        v & 0xffff_ffff_ffff
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn fills_every_known_placeholder() {
        let mut rng = SmallRng::seed_from_u64(7);
        for template in [
            "SELECT * FROM t WHERE a = {id} AND b IN {ids} AND c = {str} AND d = {dec} LIMIT {n}",
            "/api/users/{uuid}/items/{sku}?q={word}&mail={email}",
        ] {
            let mut out = String::new();
            render(template, &mut rng, &mut out);
            assert!(!out.contains('{'), "{out}");
        }
    }

    #[test]
    fn keeps_unknown_placeholders_and_text() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut out = String::new();
        render("a {nope} b {", &mut rng, &mut out);
        assert_eq!(out, "a {nope} b {");
    }

    #[test]
    fn uuids_are_version_4() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut out = String::new();
        uuid(&mut rng, &mut out);
        assert_eq!(out.len(), 36);
        assert_eq!(&out[14..15], "4");
        assert!(matches!(&out[19..20], "8" | "9" | "a" | "b"), "{out}");
    }
}
