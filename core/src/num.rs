//! Integer arithmetic that stays within 32-bit instructions on 32-bit
//! targets.
//!
//! A Cortex-M has a 32-bit divide instruction but no 64-bit one: every `/`
//! or `%` on a `u64`/`i64` there calls a software routine (about 1 KiB of
//! flash for `__aeabi_uldivmod` and its helpers). What the encoder divides
//! 64-bit values by is small (10, 1000), so it divides in 16-bit steps with
//! the hardware instruction instead. On 64-bit targets the native division
//! is used.

/// `(n / d, n % d)` for a divisor below 2¹⁶, without a 64-bit division.
#[inline]
pub(crate) fn div_rem_u64(n: u64, d: u16) -> (u64, u32) {
    if cfg!(target_pointer_width = "64") || n <= u64::from(u32::MAX) {
        // The native division (64-bit target), or a 32-bit one.
        return if cfg!(target_pointer_width = "64") {
            (n / u64::from(d), (n % u64::from(d)) as u32)
        } else {
            let n = n as u32;
            (u64::from(n / u32::from(d)), n % u32::from(d))
        };
    }
    let d = u32::from(d);
    // Long division in base 2^16 on the high word, then two 16-bit limbs of
    // the low word; every partial dividend is below d * 2^16 <= 2^32.
    let hi = (n >> 32) as u32;
    let lo = n as u32;
    let (q1, r1) = (hi / d, hi % d);
    let x = (r1 << 16) | (lo >> 16);
    let (q2, r2) = (x / d, x % d);
    let y = (r2 << 16) | (lo & 0xffff);
    let (q3, r3) = (y / d, y % d);
    ((u64::from(q1) << 32) | u64::from((q2 << 16) | q3), r3)
}

/// `(n.div_euclid(d), n.rem_euclid(d))` for a divisor below 2¹⁶, without a
/// 64-bit division.
#[inline]
pub(crate) fn div_rem_euclid_i64(n: i64, d: u16) -> (i64, u32) {
    let (q, r) = div_rem_u64(n.unsigned_abs(), d);
    // The true quotient fits an i64; only |i64::MIN| / 1 = 2^63 does not
    // as a positive number, and wraps to i64::MIN, which negated (wrapping)
    // is the answer again. With a remainder, d >= 2 and |q| < 2^62.
    let q = q as i64;
    if n >= 0 {
        (q, r)
    } else if r == 0 {
        (q.wrapping_neg(), 0)
    } else {
        (q.wrapping_neg() - 1, u32::from(d) - r)
    }
}

/// `n` in decimal at the end of `buf`; returns the digits.
#[inline]
pub(crate) fn write_u64(buf: &mut [u8; 20], n: u64) -> &[u8] {
    let mut i = buf.len();
    let mut n = n;
    loop {
        let (q, r) = div_rem_u64(n, 10);
        i -= 1;
        if let Some(b) = buf.get_mut(i) {
            // r < 10
            *b = b'0' + r as u8;
        }
        n = q;
        if n == 0 || i == 0 {
            break;
        }
    }
    buf.get(i..).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 16-bit-step path, whatever the target's pointer width.
    fn div_rem_steps(n: u64, d: u16) -> (u64, u32) {
        let d = u32::from(d);
        let hi = (n >> 32) as u32;
        let lo = n as u32;
        let (q1, r1) = (hi / d, hi % d);
        let x = (r1 << 16) | (lo >> 16);
        let (q2, r2) = (x / d, x % d);
        let y = (r2 << 16) | (lo & 0xffff);
        let (q3, r3) = (y / d, y % d);
        ((u64::from(q1) << 32) | u64::from((q2 << 16) | q3), r3)
    }

    #[test]
    fn division_in_16_bit_steps_matches_the_native_one() {
        let ns = [
            0,
            1,
            9,
            10,
            999,
            1000,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            1_795_608_000_250,
            i64::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ];
        for d in [1u16, 7, 10, 1000, 65535] {
            for n in ns {
                assert_eq!(
                    div_rem_steps(n, d),
                    (n / u64::from(d), (n % u64::from(d)) as u32)
                );
                assert_eq!(
                    div_rem_u64(n, d),
                    (n / u64::from(d), (n % u64::from(d)) as u32)
                );
            }
        }
    }

    #[test]
    fn euclidean_division_at_the_ends_of_i64() {
        for n in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX] {
            for d in [1u16, 2, 3, 65535] {
                let (q, r) = div_rem_euclid_i64(n, d);
                assert_eq!(
                    (q, i64::from(r)),
                    (n.div_euclid(i64::from(d)), n.rem_euclid(i64::from(d))),
                    "{n} / {d}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn division_in_16_bit_steps_matches_the_native_one_anywhere(n: u64, d in 1u16..) {
            proptest::prop_assert_eq!(div_rem_steps(n, d), (n / u64::from(d), (n % u64::from(d)) as u32));
        }

        #[test]
        fn euclidean_division_matches_the_native_one(n: i64, d in 1u16..) {
            let (q, r) = div_rem_euclid_i64(n, d);
            proptest::prop_assert_eq!((q, i64::from(r)), (n.div_euclid(i64::from(d)), n.rem_euclid(i64::from(d))));
        }

        #[test]
        fn decimal_matches_to_string(n: u64) {
            let mut buf = [0u8; 20];
            let want = n.to_string();
            proptest::prop_assert_eq!(write_u64(&mut buf, n), want.as_bytes());
        }
    }
}
