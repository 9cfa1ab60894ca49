#![cfg_attr(not(test), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]
#![doc = include_str!("../README.md")]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod attr;
pub mod base64;
pub mod batch;
pub mod emitter;
pub mod error;
pub mod event;
pub mod format;
pub mod id;
pub mod io;
pub mod json;
pub mod ossa;
pub mod parse;
pub mod scratch;
mod swar;
pub mod time;
pub mod uri;

pub use attr::{ExtValue, Extension, Extensions, MAX_EXTENSIONS, SPEC_VERSION};
pub use batch::{Batch, BatchFormat};
pub use emitter::{EmitError, Emitter};
pub use error::{
    Attribute, EncodeError, InBatchError, ParseError, PayloadError, Rule, ValidationError,
};
pub use event::{Data, Event, EventBuilder, MAX_DATA_DEPTH};
pub use id::{EventId, IdSource, RandomIds};
pub use json::{JsonError, JsonErrorKind, JsonPayload};
pub use ossa::RawJson;
pub use scratch::{Scratch, ScratchFull};
pub use time::{Clock, FixedClock, Offset, TimeError, Timestamp};

pub use embedded_io;
pub use heapless;
