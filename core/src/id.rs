//! Event ids: UUID v4 text made from random bytes the caller supplies.

use core::fmt;

/// A UUID v4 in its 36-character hyphenated lower-case form, held inline.
///
/// ```
/// use ossa_events_core::EventId;
/// let id = EventId::from_random_bytes([7; 16]);
/// assert_eq!(id.as_str(), "07070707-0707-4707-8707-070707070707");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventId {
    buf: [u8; 36],
}

impl EventId {
    /// A UUID v4 from 16 random bytes (version and variant bits are set here).
    pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
        let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
        let mut buf = [0u8; 36];
        uuid.hyphenated().encode_lower(&mut buf);
        EventId { buf }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // The buffer only ever holds ASCII hex digits and hyphens.
        core::str::from_utf8(&self.buf).unwrap_or("")
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EventId").field(&self.as_str()).finish()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A source of event ids, implemented by the caller (no_std has no randomness of its own).
pub trait IdSource {
    /// The next id; every call must give a new one.
    fn next_id(&mut self) -> EventId;
}

impl<T: IdSource + ?Sized> IdSource for &mut T {
    fn next_id(&mut self) -> EventId {
        (**self).next_id()
    }
}

/// UUID v4 ids from any function that fills 16 bytes with randomness
/// (a hardware RNG, a seeded CSPRNG, a host call).
pub struct RandomIds<F: FnMut(&mut [u8; 16])>(pub F);

impl<F: FnMut(&mut [u8; 16])> fmt::Debug for RandomIds<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RandomIds(..)")
    }
}

impl<F: FnMut(&mut [u8; 16])> IdSource for RandomIds<F> {
    fn next_id(&mut self) -> EventId {
        let mut bytes = [0u8; 16];
        (self.0)(&mut bytes);
        EventId::from_random_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_layout() {
        let id = EventId::from_random_bytes([0xff; 16]);
        let s = id.as_str();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"));
        assert_eq!(uuid::Uuid::parse_str(s).unwrap().get_version_num(), 4);
    }

    #[test]
    fn random_ids_differ() {
        let mut n = 0u8;
        let mut src = RandomIds(|b: &mut [u8; 16]| {
            n = n.wrapping_add(1);
            b.fill(n);
        });
        assert_ne!(src.next_id(), src.next_id());
    }
}
