//! Lists of numbers as LEB128 varints: how a critical path's self times are stored (a time of
//! a few milliseconds takes two bytes, not eight).

/// Numbers as LEB128 varints (a self time of a few ms takes two bytes, not eight).
pub fn encode_varints(values: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 3);
    for &v in values {
        let mut v = v;
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    out
}

/// [`encode_varints`] read back; `None` for a truncated or overlong number.
pub fn decode_varints(bytes: &[u8]) -> Option<Vec<u64>> {
    let mut out = Vec::new();
    let (mut v, mut shift) = (0u64, 0u32);
    for &b in bytes {
        if shift > 63 {
            return None;
        }
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            out.push(v);
            (v, shift) = (0, 0);
        } else {
            shift += 7;
        }
    }
    (shift == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_refuse_truncation() {
        let values = [0, 1, 127, 128, 16_383, 16_384, 6_868_706, u64::MAX];
        let bytes = encode_varints(&values);
        assert_eq!(bytes.len(), 1 + 1 + 1 + 2 + 2 + 3 + 4 + 10);
        assert_eq!(decode_varints(&bytes), Some(values.to_vec()));
        assert_eq!(decode_varints(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode_varints(&[0xff; 11]), None);
    }
}
