//! A small, fast 64-bit hash whose values are part of Tern's storage format.
//!
//! SQL fingerprints are stored and grouped by their hash, so the hash of a given byte
//! string must be the same in every process, on every platform and in every release.
//! `std`'s `DefaultHasher` promises none of that, so Tern carries its own: a 128-bit
//! multiply-fold mix over 16-byte blocks (in the spirit of wyhash), reading words as
//! little-endian. The golden values in the tests pin it; changing them is a storage
//! format change.

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;
const P3: u64 = 0x5899_65cc_7537_4cc3;

/// Multiplies as 128 bits and folds the halves together.
#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

/// Reads up to 8 bytes as a little-endian word, zero-padded.
#[inline(always)]
fn word(bytes: &[u8]) -> u64 {
    if let Some(w) = bytes.first_chunk::<8>() {
        return u64::from_le_bytes(*w);
    }
    // Short tails byte by byte: a variable-length copy would call `memcpy`.
    let mut w = 0u64;
    for (i, &b) in bytes.iter().enumerate() {
        w |= u64::from(b) << (8 * i);
    }
    w
}

/// Hashes `bytes` to a 64-bit value that is stable across processes, platforms and versions.
///
/// ```
/// use tern_collector::normalize::hash64;
/// assert_eq!(hash64(b"SELECT ?"), hash64(b"SELECT ?"));
/// assert_ne!(hash64(b"SELECT ?"), hash64(b"SELECT ? "));
/// ```
pub fn hash64(bytes: &[u8]) -> u64 {
    let len = bytes.len() as u64;
    let mut h = P0 ^ len.wrapping_mul(P3);
    let mut blocks = bytes.chunks_exact(16);
    for block in &mut blocks {
        let (a, b) = block.split_at(8);
        // Xoring `h` back in keeps the state alive even if a block zeroes one factor.
        h = fold_mul(word(a) ^ h ^ P1, word(b) ^ P2) ^ h;
    }
    let tail = blocks.remainder();
    let (a, b) = tail.split_at(tail.len().min(8));
    h = fold_mul(word(a) ^ h ^ P1, word(b) ^ P2) ^ h;
    fold_mul(h ^ P3, len ^ P0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_values_are_pinned_across_versions() {
        assert_eq!(hash64(b""), GOLDEN[0]);
        assert_eq!(hash64(b"a"), GOLDEN[1]);
        assert_eq!(hash64(b"SELECT * FROM t WHERE id = ?"), GOLDEN[2]);
        assert_eq!(hash64(&[0xffu8; 100]), GOLDEN[3]);
    }

    const GOLDEN: [u64; 4] = [
        0xceab_5df2_31ea_06fc,
        0x40f5_6ea5_ea04_0bfc,
        0xad83_a2b4_54ed_609f,
        0x8d71_ea9c_213d_97d7,
    ];

    #[test]
    fn trailing_zero_bytes_change_the_hash() {
        assert_ne!(hash64(b"a"), hash64(b"a\0"));
        assert_ne!(hash64(b""), hash64(b"\0"));
        assert_ne!(hash64(&[0u8; 16]), hash64(&[0u8; 17]));
    }

    #[test]
    fn short_distinct_inputs_do_not_collide() {
        let mut seen = std::collections::HashSet::new();
        for i in 0u32..200_000 {
            assert!(seen.insert(hash64(format!("SELECT {i}").as_bytes())));
        }
    }

    #[test]
    fn flipping_one_input_bit_flips_about_half_the_output_bits() {
        let base: Vec<u8> = (0u8..40).collect();
        let h0 = hash64(&base);
        let mut total = 0;
        let mut n = 0;
        for byte in 0..base.len() {
            for bit in 0..8 {
                let mut v = base.clone();
                v[byte] ^= 1 << bit;
                let d = (hash64(&v) ^ h0).count_ones();
                assert!(d >= 8, "weak diffusion at byte {byte} bit {bit}: {d}");
                total += d;
                n += 1;
            }
        }
        let mean = f64::from(total) / f64::from(n);
        assert!((28.0..36.0).contains(&mean), "mean flipped bits {mean}");
    }
}
