//! Event ids: UUID v4 text made from random bytes the caller supplies.

use core::fmt;

/// A UUID v4 in its 36-character hyphenated lower-case form, held inline.
///
/// ```
/// use ossa_events_core::EventId;
/// let id = EventId::from_random_bytes([7; 16]);
/// assert_eq!(id.as_str(), "07070707-0707-4707-8707-070707070707");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EventId {
    // Text already known to be UTF-8 (uuid writes it as a `&mut str`), so
    // `as_str` needs no UTF-8 check: `core::str::from_utf8` is ~620 B of
    // firmware flash (code and its table) that nothing else on the emit path uses.
    text: heapless::String<36>,
}

impl EventId {
    /// A UUID v4 from 16 random bytes (version and variant bits are set here).
    ///
    /// ```
    /// use ossa_events_core::{Event, EventId};
    /// // On a device: fill the bytes from the hardware RNG.
    /// let id = EventId::from_random_bytes([0xab; 16]);
    /// assert_eq!(id.as_str(), "abababab-abab-4bab-abab-abababababab");
    /// let ev = Event::builder().id(id.as_str()).source("/s").ty("t").build()?;
    /// assert_eq!(ev.id().len(), 36);
    /// # Ok::<(), ossa_events_core::ValidationError>(())
    /// ```
    pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
        let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
        let mut buf = [0u8; 36];
        let mut text = heapless::String::new();
        // 36 characters into a 36-byte string: cannot fail.
        let _ = text.push_str(uuid.hyphenated().encode_lower(&mut buf));
        EventId { text }
    }

    /// The id as text.
    ///
    /// ```
    /// # use ossa_events_core::EventId;
    /// let id = EventId::from_random_bytes([0; 16]);
    /// assert_eq!(id.as_str(), "00000000-0000-4000-8000-000000000000");
    /// assert_eq!(id.to_string(), id.as_str()); // Display writes the same text
    /// ```
    pub fn as_str(&self) -> &str {
        self.text.as_str()
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
///
/// ```
/// use ossa_events_core::{EventId, IdSource};
/// /// Sequential ids for tests (not random: fine for a replay, not for production).
/// struct Counter(u128);
/// impl IdSource for Counter {
///     fn next_id(&mut self) -> EventId {
///         self.0 += 1;
///         EventId::from_random_bytes(self.0.to_be_bytes())
///     }
/// }
/// let mut ids = Counter(0);
/// assert_ne!(ids.next_id(), ids.next_id());
/// ```
pub trait IdSource {
    /// The next id; every call must give a new one.
    ///
    /// ```
    /// use ossa_events_core::{IdSource, RandomIds};
    /// let mut ids = RandomIds(|b: &mut [u8; 16]| b.fill(1));
    /// assert_eq!(ids.next_id().as_str(), "01010101-0101-4101-8101-010101010101");
    /// ```
    fn next_id(&mut self) -> EventId;
}

impl<T: IdSource + ?Sized> IdSource for &mut T {
    fn next_id(&mut self) -> EventId {
        (**self).next_id()
    }
}

/// UUID v4 ids from any function that fills 16 bytes with randomness
/// (a hardware RNG, a seeded CSPRNG, a host call).
///
/// ```
/// use ossa_events_core::{IdSource, RandomIds};
/// // Any RNG will do; here a tiny xorshift standing in for a hardware RNG.
/// let mut state = 0x2545_f491_4f6c_dd1d_u64;
/// let mut ids = RandomIds(move |b: &mut [u8; 16]| {
///     for chunk in b.chunks_mut(8) {
///         state ^= state << 13; state ^= state >> 7; state ^= state << 17;
///         chunk.copy_from_slice(&state.to_le_bytes());
///     }
/// });
/// let (a, b) = (ids.next_id(), ids.next_id());
/// assert_ne!(a, b);
/// assert_eq!(&a.as_str()[14..15], "4"); // UUID version 4
/// ```
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
