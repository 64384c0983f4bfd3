//! Order-preserving bit patterns of `f32` and `f64`, shared by the encoder and the decoder.
//!
//! A negative float has all its bits inverted, any other has only its sign bit
//! flipped, so the big-endian bytes of the result sort like `total_cmp`
//! (`-inf < -0.0 < 0.0 < inf`, NaNs at the ends by sign). The mapping is a
//! bijection, so every float, NaN payloads included, round-trips bit-exactly.

/// The order-preserving bits of `value`.
pub(super) fn f32_to_key(value: f32) -> u32 {
    const SIGN: u32 = 1 << 31;
    let bits = value.to_bits();
    if bits & SIGN != 0 { !bits } else { bits ^ SIGN }
}

/// Inverse of [`f32_to_key`].
pub(super) fn f32_from_key(key: u32) -> f32 {
    const SIGN: u32 = 1 << 31;
    f32::from_bits(if key & SIGN != 0 { key ^ SIGN } else { !key })
}

/// The order-preserving bits of `value`.
pub(super) fn f64_to_key(value: f64) -> u64 {
    const SIGN: u64 = 1 << 63;
    let bits = value.to_bits();
    if bits & SIGN != 0 { !bits } else { bits ^ SIGN }
}

/// Inverse of [`f64_to_key`].
pub(super) fn f64_from_key(key: u64) -> f64 {
    const SIGN: u64 = 1 << 63;
    f64::from_bits(if key & SIGN != 0 { key ^ SIGN } else { !key })
}
