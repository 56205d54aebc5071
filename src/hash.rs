//! FNV-1a, 64 bits: the one stable hash of the crate, identical on every machine and
//! release (sharding, content ids, stored event keys, seeds). Not a defence against crafted
//! collisions: nothing here relies on it being one.

/// FNV-1a of `s`'s bytes.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reference_values() {
        assert_eq!(super::fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
